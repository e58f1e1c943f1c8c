/** @odoo-module **/

import { registry } from "@web/core/registry";
import { user } from "@web/core/user";
import { holdAnswer } from "@crm_sales_sop/../tests/tours/sop_late_answer";

// A sales manager compares two playbooks (3 of 10 won against 9 of 10): the
// won rates, their 95% intervals (10.8-60.3 % and 59.6-98.2 %: they overlap),
// and the verdict of the z-test (p = 0.006) that the difference is real.
registry.category("web_tour.tours").add("crm_sales_sop_playbook_compare", {
    steps: () => [
        {
            trigger: ".o_crm_sop_compare h2:contains('Playbooks Compared')",
        },
        {
            content: "playbook A: 3 won of 10, and its interval",
            trigger:
                ".o_crm_sop_compare_card:contains('Tour Playbook A'):contains('30.0 %'):contains('10.8 %')",
        },
        {
            content: "playbook B: 9 won of 10",
            trigger: ".o_crm_sop_compare_card.border-success:contains('Tour Playbook B'):contains('90.0 %')",
        },
        {
            content: "the difference is real",
            trigger: ".o_crm_sop_compare_verdict.alert-success:contains('Tour Playbook B wins')",
        },
        {
            content: "their intervals touch: overlapping intervals do not mean no difference",
            trigger: ".o_crm_sop_compare_verdict:contains('The 95% intervals overlap')",
        },
        {
            content: "changed fast: a period with no deal, then all time; the first answer comes last",
            trigger: ".o_crm_sop_compare_to",
            run() {
                holdAnswer(['"compare"', '"2000-01-01"']);
                this.anchor.value = "2000-01-01";
                this.anchor.dispatchEvent(new Event("change"));
                this.anchor.value = "";
                this.anchor.dispatchEvent(new Event("change"));
            },
        },
        {
            content: "the last change's figures show",
            trigger:
                "body.o_sop_late_answer_in .o_crm_sop_compare_card:contains('Tour Playbook A'):contains('30.0 %')",
        },
        {
            trigger: ".o_crm_sop_compare_verdict:contains('Tour Playbook B wins')",
        },
        {
            content: "a period with no closed deal",
            trigger: ".o_crm_sop_compare_to",
            run() {
                // a date input: set its value as the picker would
                this.anchor.value = "2000-01-01";
                this.anchor.dispatchEvent(new Event("change"));
            },
        },
        {
            trigger: ".o_crm_sop_compare_verdict:contains('Pick two playbooks')",
        },
        {
            content: "no closed deal: no interval of dashes, the card says why",
            trigger:
                ".o_crm_sop_compare_card:contains('Tour Playbook A') .o_crm_sop_compare_no_history:contains('Not enough history')",
        },
        {
            trigger:
                ".o_crm_sop_compare:has(.o_crm_sop_compare_card):not(:has(.o_crm_sop_compare_interval:contains('95% interval')))",
        },
    ],
});

// The same comparison in Simplified Chinese.
registry.category("web_tour.tours").add("crm_sales_sop_playbook_compare_zh", {
    steps: () => [
        {
            trigger: ".o_crm_sop_compare h2:contains('销售手册对比')",
        },
        {
            trigger: ".o_crm_sop_compare_card:contains('Tour Playbook B'):contains('赢单率')",
        },
        {
            trigger: ".o_crm_sop_compare_verdict:contains('Tour Playbook B'):contains('差异是真实的')",
        },
    ],
});

// The task analysis pivot opens with its measures.
registry.category("web_tour.tours").add("crm_sales_sop_task_analysis", {
    steps: () => [
        {
            trigger: ".o_pivot .o_pivot_measure_row:contains('Done Rate (%)')",
        },
        {
            trigger: ".o_pivot .o_pivot_measure_row:contains('Lift (points)')",
        },
    ],
});

// The coaching queue of a team with too little history: deals by expected
// revenue, said so; a row opens the deal.
registry.category("web_tour.tours").add("crm_sales_sop_coaching", {
    steps: () => [
        {
            trigger: ".o_crm_sop_coaching h2:contains('Coaching Queue')",
        },
        {
            content: "the floor says how many won and lost deals it needs (the server's figures)",
            trigger: ".o_crm_sop_coaching_floor:contains('Not enough history'):contains('9 won'):contains('lost are needed')",
        },
        {
            content: "changed fast: team A, then back to team B; A's answer comes last",
            trigger: ".o_crm_sop_coaching_team",
            run() {
                holdAnswer(['"get_queue"']);
                const options = [...this.anchor.options];
                for (const name of ["Tour Playbook A", "Tour Playbook B"]) {
                    const option = options.find((o) => o.textContent.includes(name));
                    this.anchor.value = option.value;
                    this.anchor.dispatchEvent(new Event("change"));
                }
            },
        },
        {
            content: "the last team's queue shows",
            trigger: "body.o_sop_late_answer_in .o_crm_sop_coaching_row:contains('Tour open deal')",
        },
        {
            content: "open the deal to coach",
            trigger: ".o_crm_sop_coaching_row:contains('Tour open deal'):contains('5,000')",
            run: "click",
        },
        {
            trigger: ".o_form_view",
        },
        {
            trigger: ".o_breadcrumb:contains('Tour open deal')",
        },
    ],
});

// The coaching queue's labels as the manager reads them: the zh_CN variant
// fails if a card's label is left in English.
const COACHING_LABELS = {
    "en-US": ["Coaching Queue", "Probability", "If done", "Expected gain"],
    "zh-CN": ["辅导清单", "成交概率", "完成后", "预期收益"],
};

/** At 390 px the queue is cards, not the seven-column table: every card
 * fits the screen and nothing in it is cut. */
function assertCardsReadable() {
    const width = window.innerWidth;
    if (document.querySelector(".o_crm_sop_coaching_table")?.offsetParent) {
        throw new Error("the seven-column table shows on a phone");
    }
    const cards = document.querySelectorAll(".o_crm_sop_coaching_card");
    if (!cards.length) {
        throw new Error("no card");
    }
    for (const card of cards) {
        const box = card.getBoundingClientRect();
        if (box.left < -1 || box.right > width + 1) {
            throw new Error(`a card overflows the screen: ${box.left}-${box.right}`);
        }
        for (const el of [card, ...card.querySelectorAll("*")]) {
            if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "visible") {
                throw new Error(`cut in a card: ${el.outerHTML}`);
            }
            const elBox = el.getBoundingClientRect();
            if (elBox.width && (elBox.left < box.left - 1 || elBox.right > box.right + 1)) {
                throw new Error(`out of its card: ${el.outerHTML}`);
            }
        }
    }
    const view = document.querySelector(".o_crm_sop_coaching");
    if (view.scrollWidth > view.clientWidth + 1) {
        throw new Error(`the queue overflows sideways: ${view.scrollWidth} > ${view.clientWidth}`);
    }
}

// A sales manager on a phone (390 px, en and zh_CN): one card per deal, in
// the manager's language, readable; a tap opens the deal.
registry.category("web_tour.tours").add("crm_sales_sop_coaching_phone", {
    steps: () => {
        const [title, ...labels] = COACHING_LABELS[user.lang] || COACHING_LABELS["en-US"];
        const card = ".o_crm_sop_coaching_card:contains('Tour open deal')";
        return [
            {
                trigger: `.o_crm_sop_coaching h2:contains('${title}')`,
            },
            {
                content: "the team with the open deal",
                trigger: ".o_crm_sop_coaching_team",
                run() {
                    const option = [...this.anchor.options].find((o) =>
                        o.textContent.includes("Tour Playbook B")
                    );
                    this.anchor.value = option.value;
                    this.anchor.dispatchEvent(new Event("change"));
                },
            },
            {
                content: "its deal as a card, its labels in the manager's language",
                trigger: `${card}:contains('5,000')${labels.map((label) => `:contains('${label}')`).join("")}`,
            },
            {
                content: "the cards are readable at 390 px",
                trigger: `${card}:visible`,
                run: assertCardsReadable,
            },
            {
                content: "a tap opens the deal",
                trigger: card,
                run: "click",
            },
            {
                trigger: ".o_form_view",
            },
            {
                trigger: ".o_breadcrumb:contains('Tour open deal'), .o_navbar_breadcrumbs:contains('Tour open deal')",
            },
        ];
    },
});
