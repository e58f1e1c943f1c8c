/** @odoo-module **/

import { registry } from "@web/core/registry";

// My SOP Day on a phone: the rep's open tasks across their deals as cards,
// the deal most at stake first, each with its button.
registry.category("web_tour.tours").add("crm_sales_sop_my_day", {
    url: "/odoo/my-sop-day",
    steps: () => [
        {
            content: "the deal most at stake comes first",
            trigger: ".o_kanban_record:first-child:contains('Big deal')",
        },
        {
            content: "a card has its task's button",
            trigger: ".o_kanban_record:contains('Small deal'):contains('Visit data') button:contains('Fill in')",
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
            trigger: "body:not(:has(.modal)) .o_kanban_record",
        },
    ],
});
