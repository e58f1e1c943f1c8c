/** @odoo-module **/

import { registry } from "@web/core/registry";

// The rep's Sales SOP digest waits in the messaging menu (systray): listed
// under the rep's own contact with its first words, it opens the Inbox on the
// message with its subject and deals (not the rep's empty contact thread);
// nothing wider than the screen (phone or desk).
registry.category("web_tour.tours").add("crm_sales_sop_digest_systray", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "the messaging menu counts the digest",
            trigger: ".o_menu_systray .o-mail-MessagingMenu-counter",
        },
        {
            content: "open the messaging menu",
            trigger: ".o_menu_systray i[aria-label='Messages']",
            run: "click",
        },
        {
            content: "the digest is listed with its first words",
            trigger:
                ".o-mail-NotificationItem:contains('Digest Rep'):contains('These deals need you today')",
            run() {
                const item = this.anchor;
                const right = item.getBoundingClientRect().right;
                if (right > window.innerWidth + 1) {
                    throw new Error(
                        `the digest's item is cut: ${right}px on a ${window.innerWidth}px screen`
                    );
                }
                item.click();
            },
        },
        {
            content: "it opens the Inbox on the message, with its subject and the deal",
            trigger:
                ".o-mail-Discuss .o-mail-Message:contains('Subject: Your Sales SOP today: 1 deal to move'):contains('Digest deal')",
            run() {
                const width = document.documentElement.scrollWidth;
                if (width > window.innerWidth + 1) {
                    throw new Error(
                        `the page scrolls sideways: ${width}px on a ${window.innerWidth}px screen`
                    );
                }
            },
        },
    ],
});
