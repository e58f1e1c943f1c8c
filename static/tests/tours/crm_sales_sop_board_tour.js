/** @odoo-module **/

import { registry } from "@web/core/registry";
import { holdAnswer } from "@crm_sales_sop/../tests/tours/sop_late_answer";

// A rep first on the board this month opens it: a rainbow man celebrates,
// their row is highlighted with its move, the team ranking and another
// metric follow; on a metric where nobody scored, nobody is ranked.
registry.category("web_tour.tours").add("crm_sales_sop_board", {
    steps: () => [
        {
            content: "the rep entering the top three is celebrated",
            trigger: ".o_reward:contains('Top three')",
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
    ],
});
