/** @odoo-module **/

import { registry } from "@web/core/registry";
import { user } from "@web/core/user";

// What the rep reads, in their language: the zh_CN variant fails on a task,
// stage or notification left in English.
const TEXTS = {
    "en-US": { task: "Visit data", stage: "First Contact", thanks: "Thank you", send: "Send" },
    "zh-CN": { task: "到店信息", stage: "初次接洽", thanks: "谢谢", send: "发送" },
};

// A rep suggests a change to a task (from its row of the SOP panel) and to
// the deal's SOP stage, in the small dialog; at desktop and phone width
// (the panel is a list on a desktop, cards on a phone).
function suggestSteps(row) {
    const text = TEXTS[user.lang] || TEXTS["en-US"];
    const TASK = `.o_crm_sop_tasks ${row}:contains('${text.task}')`;
    return [
        {
            content: "the SOP panel lists the task with its Suggest button",
            trigger: `${TASK} .o_crm_sop_suggest_task`,
            run: "click",
        },
        {
            content: "the dialog names the task",
            trigger: `.modal .o_crm_sop_suggest .o_field_widget[name=task_template_id]:contains('${text.task}')`,
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
            trigger: `.modal footer button[name=action_sop_send]:contains('${text.send}')`,
            run: "click",
        },
        {
            content: "the rep is thanked",
            trigger: `.o_notification:contains('${text.thanks}')`,
        },
        {
            content: "the dialog closes",
            trigger: "body:not(:has(.modal)) .o_crm_sop_suggest_stage button",
            run: "click",
        },
        {
            content: "the stage dialog names the SOP stage, no task",
            trigger: `.modal .o_crm_sop_suggest:not(:has(.o_field_widget[name=task_template_id])) .o_field_widget[name=stage_id]:contains('${text.stage}')`,
        },
        {
            content: "sending nothing is refused",
            trigger: `.modal footer button[name=action_sop_send]:contains('${text.send}')`,
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
            trigger: `.modal footer button[name=action_sop_send]:contains('${text.send}')`,
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
