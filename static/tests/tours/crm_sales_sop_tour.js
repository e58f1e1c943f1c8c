/** @odoo-module **/

import { registry } from "@web/core/registry";

// A rep opens an opportunity from the pipeline, fills the "Visit data" task
// through its dialog, and sees the task, its button and the progress change.
registry.category("web_tour.tours").add("crm_sales_sop_fill_task", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "the card shows the next step",
            trigger: ".o_kanban_record:contains('Tour opportunity') .o_crm_sop_card:contains('Send the welcome')",
        },
        {
            content: "open the opportunity",
            trigger: ".o_kanban_record:contains('Tour opportunity')",
            run: "click",
        },
        {
            content: "the SOP panel groups the tasks by stage",
            trigger: ".o_crm_sop_tasks .o_crm_sop_stage_row:contains('First Contact'):contains('0 / 4')",
        },
        {
            content: "a task opens with its guidance",
            trigger: ".o_crm_sop_tasks .o_data_row:contains('Customer basic data') td[name=name]",
            run: "click",
        },
        {
            trigger: ".modal .o_crm_sop_guidance:contains('filled once')",
        },
        {
            content: "close it",
            trigger: ".modal .btn-close",
            run: "click",
        },
        {
            content: "the SOP panel lists the task, open",
            trigger: ".o_crm_sop_tasks .o_data_row:contains('Visit data') button:contains('Fill in')",
            run: "click",
        },
        {
            content: "the dialog shows the task's guidance",
            trigger: ".modal .o_crm_sop_guidance:contains('who decides')",
        },
        {
            content: "the dialog has exactly the task's fields",
            trigger: ".modal .o_form_view:not(:has(.o_field_widget[name=expected_revenue]))",
        },
        {
            content: "fill the companions",
            trigger: ".modal .o_field_widget[name=x_sop_companions] input",
            run: "edit Her sister",
        },
        {
            content: "fill the decision makers",
            trigger: ".modal .o_field_widget[name=x_sop_decision_makers] input",
            run: "edit Her and her husband",
        },
        {
            content: "choose the source",
            trigger: ".modal .o_field_widget[name=source_id] input",
            run: "edit Search",
        },
        {
            trigger: ".ui-autocomplete .dropdown-item:contains('Search engine')",
            run: "click",
        },
        {
            content: "save",
            trigger: ".modal .o_form_button_save",
            run: "click",
        },
        {
            content: "the task is done: its button now reads View",
            trigger: "body:not(:has(.modal)) .o_crm_sop_tasks .o_data_row:contains('Visit data') button:contains('View')",
        },
        {
            content: "the stage header counts it",
            trigger: ".o_crm_sop_tasks .o_crm_sop_stage_row:contains('First Contact'):contains('1 / 4')",
        },
        {
            content: "the progress moved",
            trigger: ".o_field_widget[name=sop_progress]:contains('8')",
        },
        {
            content: "back to the pipeline",
            trigger: ".o_breadcrumb .o_back_button a, .o_breadcrumb .breadcrumb-item a",
            run: "click",
        },
        {
            content: "the card shows the new progress",
            trigger: ".o_kanban_record:contains('Tour opportunity') .o_crm_sop_card .o_field_widget[name=sop_progress]:contains('8')",
        },
    ],
});
