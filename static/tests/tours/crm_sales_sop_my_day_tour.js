/** @odoo-module **/

import { registry } from "@web/core/registry";

// My SOP Day is today's work: the next steps of each deal under a header of
// the deal (the deal most at stake first), never the stages ahead; Send acts
// in one tap, the toast says what went to whom and offers Undo, and the
// button stays where it was. In English or Simplified Chinese (each text as
// [en, zh_CN]); `row`: a task's card (phone) or row (desktop).
const TEXT = {
    visit: ["Visit data", "到店信息"],
    welcome: ["Send the welcome", "发送欢迎语"],
    budget: ["Budget and expected closing", "预算与预计成交时间"],
    script: ["welcome and self-introduction", "欢迎与自我介绍"],
    fillIn: ["Fill in", "去填写"],
    send: ["Send", "发送"],
    sent: ["Sent", "已发送"],
    undo: ["Undo", "撤回"],
    undone: ["was not sent", "已撤回"],
};

/** The selector `make(text)` in either language. */
function either(make) {
    return [0, 1].map((i) => make((key) => TEXT[key][i])).join(", ");
}

function myDaySteps(row) {
    const sendButton = (t) =>
        `${row}:contains('${t("welcome")}'):last button[name=sop_task_send]`;
    return [
        {
            content: "the deal most at stake comes first, under its own header",
            trigger: ".o_crm_sop_my_day_deal:first:contains('Big deal')",
        },
        {
            content: "the next steps of the deal's current SOP stage are listed",
            trigger: either((t) => `${row}:contains('${t("visit")}')`),
        },
        {
            content: "a stage ahead is not today's work",
            trigger: `.o_crm_sop_my_day${TEXT.budget
                .map((text) => `:not(:has(${row}:contains('${text}')))`)
                .join("")}`,
        },
        {
            content: "one tap sends the welcome script of the small deal (the last one)",
            trigger: either((t) => `${sendButton(t)}:contains('${t("send")}')`),
            run: "click",
        },
        {
            content: "the toast says to whom, with Undo",
            trigger: either(
                (t) =>
                    `.o_notification:contains('Zhou Min'):contains('zhou.min@example.com') .o_notification_buttons button:contains('${t("undo")}')`
            ),
        },
        {
            // in the language it was sent in (the customer's)
            content: "the toast names the script",
            trigger: either((t) => `.o_notification:contains('${t("script")}')`),
        },
        {
            content: "the button stays in place and reads Sent",
            trigger: either((t) => `${sendButton(t)}:disabled:contains('${t("sent")}')`),
        },
        {
            content: "Undo takes it back",
            trigger: ".o_notification .o_notification_buttons button.btn-primary",
            run: "click",
        },
        {
            content: "the rep is told it was not sent",
            trigger: either((t) => `.o_notification:contains('${t("undone")}')`),
        },
        {
            content: "the task can be sent again",
            trigger: either((t) => `${sendButton(t)}:enabled:contains('${t("send")}')`),
        },
        {
            content: "Fill in acts from the list, as in the panel",
            trigger: either(
                (t) => `${row}:contains('${t("visit")}') button:contains('${t("fillIn")}')`
            ),
            run: "click",
        },
        {
            content: "it opens the task's dialog",
            trigger: ".modal .o_form_view [name=x_sop_companions]",
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
