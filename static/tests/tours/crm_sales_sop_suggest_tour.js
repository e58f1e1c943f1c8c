/** @odoo-module **/

import { registry } from "@web/core/registry";

// A rep suggests a change to a task (from its row of the SOP panel) and to
// the deal's SOP stage, in the small dialog; at desktop and phone width
// (the panel is a list on a desktop, cards on a phone).
function suggestSteps(row) {
    const TASK = `.o_crm_sop_tasks ${row}:contains('Visit data')`;
    return [
        {
            content: "the SOP panel lists the task with its Suggest button",
            trigger: `${TASK} .o_crm_sop_suggest_task`,
            run: "click",
        },
        {
            content: "the dialog names the task",
            trigger: ".modal .o_crm_sop_suggest .o_field_widget[name=task_template_id]:contains('Visit data')",
        },
        {
            content: "write the suggestion",
            trigger: ".modal .o_field_widget[name=text] textarea",
            run: "edit Ask who decides before the visit, not after",
        },
        {
            content: "this step does not help",
            trigger: ".modal .o_field_widget[name=not_helpful] input",
            run: "click",
        },
        {
            content: "send it",
            trigger: ".modal footer button:contains('Send')",
            run: "click",
        },
        {
            content: "the rep is thanked",
            trigger: ".o_notification:contains('Thank you')",
        },
        {
            content: "the dialog closes",
            trigger: "body:not(:has(.modal)) .o_crm_sop_suggest_stage button",
            run: "click",
        },
        {
            content: "the stage dialog names the SOP stage, no task",
            trigger: ".modal .o_crm_sop_suggest:not(:has(.o_field_widget[name=task_template_id])) .o_field_widget[name=stage_id]:contains('First Contact')",
        },
        {
            content: "sending nothing is refused",
            trigger: ".modal footer button:contains('Send')",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name=text].o_field_invalid",
        },
        {
            content: "write the stage suggestion",
            trigger: ".modal .o_field_widget[name=text] textarea",
            run: "edit Offer the showroom visit in the first call",
        },
        {
            trigger: ".modal footer button:contains('Send')",
            run: "click",
        },
        {
            content: "back on the deal",
            trigger: "body:not(:has(.modal)) .o_crm_sop_tasks",
        },
    ];
}

registry.category("web_tour.tours").add("crm_sales_sop_suggest", {
    steps: () => suggestSteps(".o_data_row"),
});
registry.category("web_tour.tours").add("crm_sales_sop_suggest_phone", {
    steps: () => suggestSteps(".o_kanban_record"),
});
