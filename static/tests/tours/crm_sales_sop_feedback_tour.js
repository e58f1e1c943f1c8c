/** @odoo-module **/

import { registry } from "@web/core/registry";

// A sales manager reviews the reps' feedback: the Task Feedback report, then
// the suggestions behind a task, marked considered.
registry.category("web_tour.tours").add("crm_sales_sop_feedback", {
    steps: () => [
        {
            content: "the task's row: set aside twice, why, and one suggestion",
            trigger: ".o_list_view .o_data_row:contains('Feedback task'):contains('No meeting (2)')",
        },
        {
            content: "open its suggestions",
            trigger: ".o_list_view .o_data_row:contains('Feedback task') button:contains('Suggestions')",
            run: "click",
        },
        {
            content: "the suggestion, new",
            trigger: ".o_list_view .o_data_row:contains('Ask the budget later') .badge:contains('New')",
        },
        {
            content: "consider it",
            trigger: ".o_list_view .o_data_row:contains('Ask the budget later') button:contains('Consider')",
            run: "click",
        },
        {
            trigger: ".o_list_view .o_data_row:contains('Ask the budget later') .badge:contains('Considered')",
        },
    ],
});
