/** @odoo-module **/

import { registry } from "@web/core/registry";
import { user } from "@web/core/user";

// A rep sends the welcome script from the Scripts menu of the SOP panel in
// one click and sees its task done; then copies the self-introduction for a
// messenger (the rendered text is on the clipboard) and confirms it was sent.
registry.category("web_tour.tours").add("crm_sales_sop_scripts", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "open the opportunity",
            trigger: ".o_kanban_record:contains('Script opportunity')",
            run: "click",
        },
        {
            trigger: ".o_crm_sop_tasks .o_data_row:contains('Send the welcome') .badge:contains('To Do')",
        },
        {
            content: "open the Scripts menu",
            trigger: ".o_crm_sop_scripts_button",
            run: "click",
        },
        {
            content: "the scripts of the deal's SOP stage come first",
            trigger: ".modal .o_crm_sop_script_list > .o_crm_sop_script:first-child:contains('welcome'):contains('This stage'):contains('To do')",
        },
        {
            content: "the customer's language is preselected",
            trigger: ".modal .o_crm_sop_script_lang",
            run: function () {
                const select = document.querySelector(".modal .o_crm_sop_script_lang");
                if (select.value !== "en_US") {
                    throw new Error(`expected en_US, got ${select.value}`);
                }
            },
        },
        {
            content: "switch the script's language to Chinese",
            trigger: ".modal .o_crm_sop_script_lang",
            run: "select zh_CN",
        },
        {
            content: "the script names follow the language",
            trigger: ".modal .o_crm_sop_script_name:contains('销售SOP：欢迎与自我介绍')",
        },
        {
            content: "and back to English",
            trigger: ".modal .o_crm_sop_script_lang",
            run: "select en_US",
        },
        {
            trigger: ".modal .o_crm_sop_script_name:contains('Sales SOP: welcome and self-introduction')",
        },
        {
            content: "send the welcome by email in one click",
            trigger: ".modal .o_crm_sop_script:contains('welcome') .o_crm_sop_script_email",
            run: "click",
        },
        {
            content: "the toast says what went to whom, with Undo",
            trigger: ".o_notification:contains('Sales SOP: welcome and self-introduction'):contains('Zhao Min <zhao.min@example.com>') .o_notification_buttons button:contains('Undo')",
        },
        {
            content: "its task is done",
            trigger: "body:not(:has(.modal)) .o_crm_sop_tasks .o_data_row:contains('Send the welcome') .badge:contains('Done')",
        },
        {
            content: "the script is in the chatter",
            trigger: ".o-mail-Message:contains('Thank you for visiting')",
        },
        {
            trigger: ".o_crm_sop_scripts_button",
            run: "click",
        },
        {
            content: "copy the self-introduction for WeChat",
            trigger: ".modal .o_crm_sop_script:contains('Sales SOP: self-introduction') .o_crm_sop_script_copy",
            run: "click",
        },
        {
            content: "the rendered text is shown",
            trigger: ".modal .o_crm_sop_script_copy_dialog .text-success:contains('Copied')",
        },
        {
            content: "and it is on the clipboard",
            trigger: ".modal .o_crm_sop_script_text",
            run: async function () {
                const text = await navigator.clipboard.readText();
                const shown = document.querySelector(".modal .o_crm_sop_script_text").value;
                if (!text.includes("Hello Zhao Min") || !text.includes("Save my contact") || text !== shown) {
                    throw new Error(`unexpected clipboard: ${text}`);
                }
                if (text.includes("<")) {
                    throw new Error(`the clipboard holds HTML: ${text}`);
                }
            },
        },
        {
            content: "confirm it was sent",
            trigger: ".modal .o_crm_sop_script_sent",
            run: "click",
        },
        {
            trigger: ".o_notification:contains('recorded as sent')",
        },
        {
            trigger: "body:not(:has(.modal)) .o_crm_sop_scripts_button",
            run: "click",
        },
        {
            content: "both show as sent",
            trigger: ".modal .o_crm_sop_script:contains('Sales SOP: self-introduction') .badge:contains('Sent')",
        },
        {
            trigger: ".modal .btn-secondary:contains('Close')",
            run: "click",
        },
        {
            trigger: "body:not(:has(.modal))",
        },
    ],
});

/** The form's scrolling element (at desktop width .o_content, on a phone the
 * page's scrolling element). */
function formScroller() {
    const content = document.querySelector(".o_action_manager .o_form_view .o_content");
    if (content && content.scrollHeight > content.clientHeight + 1) {
        const style = getComputedStyle(content);
        if (["auto", "scroll"].includes(style.overflowY)) {
            return content;
        }
    }
    return (
        [...document.querySelectorAll(".o_action_manager .o_form_view, .o_action_manager .o_form_view *")].find(
            (el) =>
                el.scrollHeight > el.clientHeight + 1 &&
                ["auto", "scroll"].includes(getComputedStyle(el).overflowY)
        ) || document.scrollingElement
    );
}

/** Copy → Sent from a task of the SOP panel scrolled down the form: the
 * record reloads in place, the form keeps its scroll position (the form is
 * not remounted: the marked scroller is still there). */
function copyKeepsScrollSteps(rowText, row = ".o_data_row", sentText = "recorded as sent") {
    return [
        {
            content: "the SOP panel's script task",
            trigger: `.o_crm_sop_tasks ${row}:contains('${rowText}') button[name=action_sop_copy_script]`,
            run: function () {
                const button = this.anchor;
                const scroller = formScroller();
                // bring the Copy button to the top: the form scrolled down
                const offset =
                    button.getBoundingClientRect().top -
                    (scroller === document.scrollingElement ? 0 : scroller.getBoundingClientRect().top);
                scroller.scrollTop += offset - 20;
                if (scroller.scrollTop < 50) {
                    throw new Error(`the form did not scroll: ${scroller.scrollTop}`);
                }
                scroller.dataset.sopTourScroller = "1";
                window.__sopTourScroll = scroller.scrollTop;
            },
        },
        {
            content: "copy the script",
            trigger: `.o_crm_sop_tasks ${row}:contains('${rowText}') button[name=action_sop_copy_script]`,
            run: "click",
        },
        {
            trigger: ".modal .o_crm_sop_script_copy_dialog .text-success .fa-check",
        },
        {
            content: "confirm it was sent",
            trigger: ".modal .o_crm_sop_script_sent",
            run: "click",
        },
        {
            trigger: `.o_notification:contains('${sentText}')`,
        },
        {
            content: "the record reloaded: its task is done",
            trigger: `body:not(:has(.modal)) .o_crm_sop_tasks ${row}:contains('${rowText}') [name=state] .text-bg-success`,
        },
        {
            content: "the form kept its scroll position",
            trigger: "[data-sop-tour-scroller]",
            run: function () {
                const scroller = this.anchor;
                if (scroller !== formScroller()) {
                    throw new Error("the form was reloaded (its scroller was replaced)");
                }
                const before = window.__sopTourScroll;
                if (Math.abs(scroller.scrollTop - before) > 2) {
                    throw new Error(`the form jumped: scrollTop ${before} → ${scroller.scrollTop}`);
                }
            },
        },
    ];
}

/** The same from the Scripts menu: its record reloads in place too. */
const scriptsMenuKeepsScrollSteps = [
    {
        content: "scroll the Scripts button to the top of the form",
        trigger: ".o_crm_sop_scripts_button",
        run: function () {
            const scroller = formScroller();
            const offset =
                this.anchor.getBoundingClientRect().top -
                (scroller === document.scrollingElement ? 0 : scroller.getBoundingClientRect().top);
            scroller.scrollTop += offset - 20;
            if (scroller.scrollTop < 50) {
                throw new Error(`the form did not scroll: ${scroller.scrollTop}`);
            }
            window.__sopTourScroll = scroller.scrollTop;
        },
    },
    {
        trigger: ".o_crm_sop_scripts_button",
        run: "click",
    },
    {
        content: "copy the self-introduction",
        trigger: ".modal .o_crm_sop_script:contains('Sales SOP: self-introduction') .o_crm_sop_script_copy",
        run: "click",
    },
    {
        trigger: ".modal .o_crm_sop_script_copy_dialog .text-success:contains('Copied')",
    },
    {
        trigger: ".modal .o_crm_sop_script_sent",
        run: "click",
    },
    {
        trigger: "body:not(:has(.modal)) .o_notification:contains('recorded as sent')",
    },
    {
        content: "the form kept its scroll position",
        trigger: "body:not(:has(.modal)) [data-sop-tour-scroller]",
        run: function () {
            const scroller = this.anchor;
            if (scroller !== formScroller()) {
                throw new Error("the form was reloaded (its scroller was replaced)");
            }
            const before = window.__sopTourScroll;
            if (Math.abs(scroller.scrollTop - before) > 2) {
                throw new Error(`the form jumped: scrollTop ${before} → ${scroller.scrollTop}`);
            }
        },
    },
];

// Copy then Sent on the deal form keeps the rep where they were: from a
// task of the SOP panel, then from the Scripts menu.
registry.category("web_tour.tours").add("crm_sales_sop_copy_keeps_scroll", {
    steps: () => [...copyKeepsScrollSteps("Send the welcome"), ...scriptsMenuKeepsScrollSteps],
});

// The same at 390 px (en and zh_CN): the SOP panel is cards there; the
// task and the notification in the rep's language.
const COPY_TEXTS = {
    "en-US": { task: "Send the welcome", sent: "recorded as sent" },
    "zh-CN": { task: "发送欢迎语", sent: "已记录话术为已发送" },
};
registry.category("web_tour.tours").add("crm_sales_sop_copy_keeps_scroll_phone", {
    steps: () => {
        const text = COPY_TEXTS[user.lang] || COPY_TEXTS["en-US"];
        return copyKeepsScrollSteps(text.task, ".o_kanban_record", text.sent);
    },
});
