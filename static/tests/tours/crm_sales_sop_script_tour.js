/** @odoo-module **/

import { registry } from "@web/core/registry";

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
