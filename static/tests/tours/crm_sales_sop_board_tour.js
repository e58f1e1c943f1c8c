/** @odoo-module **/

import { registry } from "@web/core/registry";
import { holdAnswer } from "@crm_sales_sop/../tests/tours/sop_late_answer";

// A rep first on the board this month opens it: a rainbow man celebrates,
// their row is highlighted with its move, the team ranking and another
// metric follow; on a metric where nobody scored, nobody is ranked.
/** The metric tabs fit the screen: they scroll sideways inside their bar,
 * the page itself never overflows. */
function assertTabsFit() {
    const tabs = document.querySelector(".o_crm_sop_board_metrics");
    const board = document.querySelector(".o_crm_sop_board");
    const tabsBox = tabs.getBoundingClientRect();
    if (tabsBox.right > window.innerWidth + 1 || tabsBox.left < -1) {
        throw new Error(`the metric tabs overflow the screen: ${tabsBox.left}-${tabsBox.right}`);
    }
    if (board.scrollWidth > board.clientWidth + 1) {
        throw new Error(`the board overflows sideways: ${board.scrollWidth} > ${board.clientWidth}`);
    }
    if (document.documentElement.scrollWidth > window.innerWidth + 1) {
        throw new Error("the page overflows sideways");
    }
    const last = tabs.querySelector("[data-metric=adherence]");
    last.scrollIntoView({ block: "nearest", inline: "nearest" });
    const lastBox = last.getBoundingClientRect();
    if (lastBox.right > window.innerWidth + 1 || lastBox.width <= 0) {
        throw new Error("the last metric tab cannot be reached");
    }
}

/** The rainbow man is in the board's body, below the metric tabs. */
function assertRewardBelowTabs() {
    const rewards = document.querySelectorAll(".o_reward");
    if (rewards.length !== 1) {
        throw new Error(`${rewards.length} rainbow men`);
    }
    const reward = rewards[0];
    if (!reward.closest(".o_crm_sop_board_body")) {
        throw new Error("the rainbow man is not in the board's body");
    }
    const tabs = document.querySelector(".o_crm_sop_board_metrics").getBoundingClientRect();
    const top = reward.getBoundingClientRect().top;
    if (top < tabs.bottom - 1) {
        throw new Error(`the rainbow man (top ${top}) covers the tabs (bottom ${tabs.bottom})`);
    }
    // the tabs stay clickable: what is at their centre is a tab
    const tab = document.elementFromPoint(
        tabs.left + Math.min(tabs.width / 2, 40),
        tabs.top + tabs.height / 2
    );
    if (!tab || !tab.closest(".o_crm_sop_board_metrics")) {
        throw new Error("something covers the metric tabs");
    }
}

registry.category("web_tour.tours").add("crm_sales_sop_board", {
    steps: () => [
        {
            content: "the rep entering the top three is celebrated, under the tabs",
            trigger: ".o_crm_sop_board_body .o_reward:contains('Top three')",
            run: assertRewardBelowTabs,
        },
        {
            content: "the metric tabs fit the screen",
            trigger: ".o_crm_sop_board_metrics [data-metric=adherence]",
            run: assertTabsFit,
        },
        {
            content: "the rep's own row is highlighted, first, with its revenue",
            trigger: ".o_crm_sop_board_row_me:contains('Board Rep'):contains('12,345,678')",
        },
        {
            content: "the period in the user's date format (en_US: 06/01/2031), not ISO",
            trigger: ".o_crm_sop_board_period:contains('/')",
        },
        {
            trigger: ".o_crm_sop_board_period:not(:contains('-0'))",
        },
        {
            content: "their move since last month",
            trigger: ".o_crm_sop_board_me .o_crm_sop_board_move_new",
        },
        {
            content: "rank the teams",
            trigger: ".o_crm_sop_board_group_by",
            run: "select team",
        },
        {
            content: "the rep's team, per salesperson",
            trigger: ".o_crm_sop_board_row_me:contains('Board Team')",
        },
        {
            content: "another metric",
            trigger: ".o_crm_sop_board_metrics [data-metric=tasks_done]",
            run: "click",
        },
        {
            trigger: ".o_crm_sop_board_metrics [data-metric=tasks_done].active",
        },
        {
            content: "no task completed: the team is not ranked (no place at 0)",
            trigger:
                ".o_crm_sop_board_table:not(:has(.o_crm_sop_board_row_me)):not(:has(.o_crm_sop_board_row:contains('Board Team')))",
        },
        {
            trigger: "body:not(:has(.o_crm_sop_board_me))",
        },
        {
            content: "clicked fast: revenue, then adherence; revenue's answer comes last",
            trigger: ".o_crm_sop_board_metrics [data-metric=adherence]",
            run() {
                holdAnswer(['"get_board"', '"won_revenue"']);
                const tabs = ".o_crm_sop_board_metrics [data-metric=%s]";
                document.querySelector(tabs.replace("%s", "won_revenue")).click();
                document.querySelector(tabs.replace("%s", "adherence")).click();
            },
        },
        {
            trigger: "body.o_sop_late_answer_in [data-metric=adherence].active",
        },
        {
            content: "the last click's figures show: the team has no adherence, so no rank",
            trigger:
                ".o_crm_sop_board_table:not(:has(.o_crm_sop_board_row:contains('Board Team')))",
        },
        {
            content: "not the late revenue answer",
            trigger: "body:not(:has(.o_crm_sop_board_me)):not(:has(.o_reward))",
        },
    ],
});

// The same rep opens the board again: they are still first, the rainbow man
// is not shown again (once per entry into the top three).
registry.category("web_tour.tours").add("crm_sales_sop_board_again", {
    steps: () => [
        {
            content: "the board is shown and its celebration decided",
            trigger: ".o_crm_sop_board_settled .o_crm_sop_board_row_me:contains('Board Rep')",
        },
        {
            content: "no rainbow man on the second visit",
            trigger: "body:not(:has(.o_reward))",
        },
        {
            trigger: ".o_crm_sop_board_metrics [data-metric=adherence]",
            run: assertTabsFit,
        },
    ],
});

// The same board in Simplified Chinese, seen by a rep who won nothing yet:
// not ranked (no place, no trophy at 0).
registry.category("web_tour.tours").add("crm_sales_sop_board_zh", {
    steps: () => [
        {
            content: "the board speaks Chinese",
            trigger: ".o_crm_sop_board h2:contains('成就榜')",
        },
        {
            trigger: ".o_crm_sop_board_metrics [data-metric=won_revenue]:contains('赢单金额')",
        },
        {
            content: "the board lists who won, in Chinese",
            trigger: ".o_crm_sop_board_row:contains('Board Rep') .fa-trophy",
        },
        {
            content: "a rep who won nothing yet is not ranked: no place, no trophy",
            trigger:
                ".o_crm_sop_board_table:not(:has(.o_crm_sop_board_row:contains('Zhang Board')))",
        },
        {
            trigger: "body:not(:has(.o_crm_sop_board_me))",
        },
        {
            content: "the Chinese metric tabs fit the screen too",
            trigger: ".o_crm_sop_board_metrics [data-metric=adherence]",
            run: assertTabsFit,
        },
    ],
});
