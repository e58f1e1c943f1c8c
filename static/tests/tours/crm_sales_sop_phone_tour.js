/** @odoo-module **/

import { registry } from "@web/core/registry";

// At phone width (the showroom rep): the next step is tappable on the card
// and first on the form; a refused move leaves the form usable; a call done
// in the chatter completes its task card; the tasks are cards grouped under
// stage headers, with every button (Mark done, then Reopen; Not applicable,
// then Restore).
registry.category("web_tour.tours").add("crm_sales_sop_phone", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "the next step on the card can be tapped",
            trigger: ".o_kanban_record:contains('Phone opportunity') .o_crm_sop_card_next:contains('Send the welcome')",
            run: "click",
        },
        {
            content: "it opens the script to send",
            trigger: ".modal .o_mail_composer_form_view, .modal .o_mail_composer_form",
        },
        {
            trigger: ".modal .btn-close",
            run: "click",
        },
        {
            content: "open the opportunity",
            trigger: "body:not(:has(.modal)) .o_kanban_record:contains('Phone opportunity') .fw-bold:contains('Phone opportunity')",
            run: "click",
        },
        {
            content: "the next step and its button come first",
            trigger: ".o_form_view .o_crm_sop_next button[name=action_sop_next]",
        },
        {
            content: "try to move the deal on: the gate refuses",
            trigger: ".o_statusbar_status button:contains('Qualified')",
            run: "click",
        },
        {
            trigger: ".modal:contains('You cannot move')",
        },
        {
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "the form is back on the saved stage",
            trigger: "body:not(:has(.modal)) .o_statusbar_status .o_arrow_button_current:contains('New')",
        },
        {
            content: "mark the planned call done in the chatter",
            trigger: ".o-mail-Activity:contains('Call the customer') .o-mail-Activity-markDone",
            run: "click",
        },
        {
            trigger: ".o-mail-ActivityMarkAsDone button[aria-label='Done']",
            run: "click",
        },
        {
            content: "its task card turns done without a reload",
            trigger: ".o_crm_sop_tasks .o_kanban_record:contains('Follow-up call') .badge:contains('Done')",
        },
        {
            content: "the tasks are cards under stage headers",
            trigger: ".o_crm_sop_tasks .o_crm_sop_stage_row:contains('Confirm Needs'):contains('0 / 2')",
        },
        {
            content: "tick a task by hand",
            trigger: ".o_crm_sop_tasks .o_kanban_record:contains('Needs summarised') button:contains('Mark done')",
            run: "click",
        },
        {
            content: "a mistaken tick can be undone",
            trigger: ".o_crm_sop_tasks .o_kanban_record:contains('Needs summarised') button:contains('Reopen')",
            run: "click",
        },
        {
            trigger: ".o_crm_sop_tasks .o_kanban_record:contains('Needs summarised') button:contains('Mark done')",
        },
        {
            content: "set the reference case aside",
            trigger: ".o_crm_sop_tasks .o_kanban_record:contains('Share a reference case') button[name=action_sop_mark_na]",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name=reason] input",
            run: "edit Not for this customer",
        },
        {
            trigger: ".modal button[name=action_confirm]",
            run: "click",
        },
        {
            content: "it can be restored",
            trigger: "body:not(:has(.modal)) .o_crm_sop_tasks .o_kanban_record:contains('Share a reference case'):contains('Not for this customer') button:contains('Restore')",
        },
    ],
});
