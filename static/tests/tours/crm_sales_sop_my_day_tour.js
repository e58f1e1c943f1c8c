/** @odoo-module **/

import { registry } from "@web/core/registry";

// My SOP Day is today's work: the next steps of each deal under a header of
// the deal (the deal most at stake first), never the stages ahead; Send acts
// in one tap, the toast says what went to whom and offers Undo, and the
// button stays where it was. `row`: a task's card (phone) or row (desktop).
function myDaySteps(row) {
    return [
        {
            content: "the deal most at stake comes first, under its own header",
            trigger: ".o_crm_sop_my_day_deal:first:contains('Big deal')",
        },
        {
            content: "the next steps of the deal's current SOP stage are listed",
            trigger: `${row}:contains('Visit data')`,
        },
        {
            content: "a stage ahead is not today's work",
            trigger: `.o_crm_sop_my_day:not(:has(${row}:contains('Budget and expected closing')))`,
        },
        {
            content: "one tap sends the welcome script of the small deal (the last one)",
            trigger: `${row}:contains('Send the welcome'):last button[name=sop_task_send]:contains('Send')`,
            run: "click",
        },
        {
            content: "the toast says what went to whom, with Undo",
            trigger: ".o_notification:contains('welcome and self-introduction'):contains('Zhou Min'):contains('zhou.min@example.com') .o_notification_buttons button:contains('Undo')",
        },
        {
            content: "the button stays in place and reads Sent",
            trigger: `${row}:contains('Send the welcome'):last button[name=sop_task_send]:disabled:contains('Sent')`,
        },
        {
            content: "Undo takes it back",
            trigger: ".o_notification .o_notification_buttons button:contains('Undo')",
            run: "click",
        },
        {
            content: "the rep is told it was not sent",
            trigger: ".o_notification:contains('was not sent')",
        },
        {
            content: "the task can be sent again",
            trigger: `${row}:contains('Send the welcome'):last button[name=sop_task_send]:enabled:contains('Send')`,
        },
        {
            content: "Fill in acts from the list, as in the panel",
            trigger: `${row}:contains('Visit data') button:contains('Fill in')`,
            run: "click",
        },
        {
            content: "it opens the task's dialog",
            trigger: ".modal .o_form_view [name=sop_companions]",
        },
        {
            trigger: ".modal .btn-close",
            run: "click",
        },
        {
            trigger: `body:not(:has(.modal)) ${row}`,
        },
    ];
}

registry.category("web_tour.tours").add("crm_sales_sop_my_day", {
    url: "/odoo/my-sop-day",
    steps: () => myDaySteps(".o_kanban_record"),
});

registry.category("web_tour.tours").add("crm_sales_sop_my_day_desktop", {
    url: "/odoo/my-sop-day",
    steps: () => myDaySteps(".o_data_row"),
});
