/** @odoo-module **/

import { registry } from "@web/core/registry";

// A rep first on the board this month opens it: a rainbow man celebrates,
// their row is highlighted with its move, the team ranking and another
// metric follow.
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
            content: "the team is still ranked, by tasks completed",
            trigger: ".o_crm_sop_board_row_me:contains('Board Team')",
        },
    ],
});

// The same board in Simplified Chinese.
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
            trigger: ".o_crm_sop_board_me:contains('我的排名')",
        },
        {
            trigger: ".o_crm_sop_board_row_me:contains('Zhang Board')",
        },
    ],
});
