/** @odoo-module **/

import { registry } from "@web/core/registry";

// Gates a rep can live with: a gated column says so, a warn gate tells the
// rep which required tasks it leaves open, and a deal already past a newly
// gated stage is marked won.
registry.category("web_tour.tours").add("crm_sales_sop_gates", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "hover the New column's title",
            trigger: ".o_kanban_group .o_column_title:contains('New')",
            run: "hover",
        },
        {
            content: "its tooltip says what leaving New needs",
            trigger: ".o-tooltip:contains('Gate: leaving this stage needs these tasks done')",
        },
        {
            content: "open the deal in Qualified",
            trigger: ".o_kanban_record:contains('Warned deal')",
            run: "click",
        },
        {
            content: "its open required task says what the gate asks",
            trigger: ".o_crm_sop_tasks .o_data_row:contains('Logged if still open when the deal leaves')",
        },
        {
            content: "move it on to Proposition",
            trigger: ".o_statusbar_status button:contains('Proposition')",
            run: "click",
        },
        {
            content: "the move went through",
            trigger: ".o_statusbar_status .o_arrow_button_current:contains('Proposition')",
        },
        {
            content: "the warn gate tells the rep which required tasks are left open",
            trigger: ".o_crm_sop_gate_warning:contains('Required tasks left open past a gate'):contains('Confirm Needs')",
        },
        {
            content: "back to the pipeline",
            trigger: ".o_breadcrumb .o_back_button a, .o_breadcrumb li.breadcrumb-item a",
            run: "click",
        },
        {
            content: "open the signed deal, already past the newly gated New",
            trigger: ".o_kanban_record:contains('Signed deal')",
            run: "click",
        },
        {
            content: "mark it won",
            trigger: ".o_form_view button[name=action_set_won_rainbowman]",
            run: "click",
        },
        {
            content: "it is won",
            trigger: ".o_form_view .ribbon:contains('Won')",
        },
    ],
});
