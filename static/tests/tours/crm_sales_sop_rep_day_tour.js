/** @odoo-module **/

import { registry } from "@web/core/registry";

// A rep's day on a gated deal: a refused move leaves the form usable, Fill in
// says what is still missing, an activity done in the chatter completes its
// task in the panel without a reload, and a task is set aside.
registry.category("web_tour.tours").add("crm_sales_sop_rep_day", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "open the gated opportunity",
            trigger: ".o_kanban_record:contains('Gated opportunity')",
            run: "click",
        },
        {
            content: "the next step comes first, above the form",
            trigger: ".o_crm_sop_next:contains('Next step') button[name=action_sop_next]",
        },
        {
            content: "try to move the deal to Qualified",
            trigger: ".o_statusbar_status button:contains('Qualified')",
            run: "click",
        },
        {
            content: "the gate refuses, naming the missing tasks",
            trigger: ".modal:contains('You cannot move'):contains('Visit data')",
        },
        {
            content: "close the message",
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "the form is back on the saved stage",
            trigger: "body:not(:has(.modal)) .o_statusbar_status .o_arrow_button_current:contains('New')",
        },
        {
            content: "Fill in opens the dialog (no error on the refused stage)",
            trigger: ".o_crm_sop_tasks .o_data_row:contains('Visit data') button:contains('Fill in')",
            run: "click",
        },
        {
            content: "the task's fields are marked",
            trigger: ".modal .o_crm_sop_fill_field[name=x_sop_companions] input",
            run: "edit Her sister",
        },
        {
            content: "save with the decision makers still empty",
            trigger: ".modal .o_form_button_save",
            run: "click",
        },
        {
            content: "the panel says what is still missing",
            trigger: "body:not(:has(.modal)) .o_crm_sop_tasks .o_data_row:contains('Visit data'):contains('Missing: Source and Decision Makers')",
        },
        {
            content: "the booked call shows when it is planned",
            trigger: ".o_crm_sop_tasks .o_data_row:contains('Follow-up call'):contains('Planned for')",
        },
        {
            content: "mark the call done in the chatter",
            trigger: ".o-mail-Activity:contains('Call the customer') .o-mail-Activity-markDone",
            run: "click",
        },
        {
            trigger: ".o-mail-ActivityMarkAsDone button[aria-label='Done']",
            run: "click",
        },
        {
            content: "the call task is done in the panel, without a reload",
            trigger: ".o_crm_sop_tasks .o_data_row:contains('Follow-up call') td[name=state]:contains('Done')",
        },
        {
            content: "set the reference case aside",
            trigger: ".o_crm_sop_tasks .o_data_row:contains('Share a reference case') button[name=action_sop_mark_na]",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name=reason] input",
            run: "edit The customer asked for none",
        },
        {
            trigger: ".modal button[name=action_confirm]",
            run: "click",
        },
        {
            content: "the task is not applicable, and can be restored",
            trigger: "body:not(:has(.modal)) .o_crm_sop_tasks .o_data_row:contains('Share a reference case'):contains('The customer asked for none') button:contains('Restore')",
        },
    ],
});
