/** @odoo-module **/

import { registry } from "@web/core/registry";
import { user } from "@web/core/user";
import { holdAnswer } from "@crm_sales_sop/../tests/tours/sop_late_answer";

// Issue 15, from the rep's seat (en and zh_CN): the SOP filters narrow My
// Pipeline; a deal in Proposition shows the SOP stage of Proposition, its
// left-behind tasks marked as such, the form says Stalled, the prediction
// card without history says what it will show and shows no empty worth, and
// the next step is neither cut nor its button wrapped.
// The SOP filters' labels as the rep reads them: the zh_CN variant fails if
// the search view is left untranslated.
const FILTER_LABELS = {
    "en-US": ["SOP Not Started", "SOP Complete", "Stalled"],
    "zh-CN": ["SOP未开始", "SOP已完成", "停滞"],
};

/** The three SOP filters follow each other in the Filters menu, in one group
 * (no divider between them). */
function assertOneGroup(labels) {
    const items = [...document.querySelectorAll(".o_filter_menu > *")];
    const at = labels.map((label) =>
        items.findIndex((el) => el.classList.contains("o-dropdown-item") && el.textContent.trim() === label)
    );
    if (at.includes(-1)) {
        throw new Error(`SOP filters missing: ${labels.filter((l, i) => at[i] < 0).join(", ")}`);
    }
    const [first, last] = [Math.min(...at), Math.max(...at)];
    if (last - first !== labels.length - 1) {
        throw new Error("the SOP filters are not next to each other");
    }
    if (!items[first - 1]?.classList.contains("dropdown-divider")) {
        throw new Error("the SOP filters share their group with other filters");
    }
}

registry.category("web_tour.tours").add("crm_sales_sop_rep_filters", {
    url: "/odoo/crm",
    steps: () => {
        const labels = FILTER_LABELS[user.lang] || FILTER_LABELS["en-US"];
        const stalled = labels[2];
        // on a phone (Odoo's small screen) the search bar hides behind a toggle
        const phone = window.innerWidth < 768;
        return [
            {
                content: "My Pipeline is on",
                trigger: ".o_kanban_view .o_kanban_record:contains('Fresh deal')",
            },
            ...(phone
                ? [
                      {
                          content: "phone: show the search bar",
                          trigger: ".o_control_panel_navigation button:has(.fa-search)",
                          run: "click",
                      },
                  ]
                : []),
            {
                trigger: ".o_searchview .o_facet_values",
            },
            {
                content: "open the filters",
                trigger: ".o_searchview_dropdown_toggler",
                run: "click",
            },
            {
                content: "the SOP filters, translated, in their own group",
                trigger: `.o_filter_menu .o-dropdown-item:contains('${stalled}')`,
                run: () => assertOneGroup(labels),
            },
            {
                content: "Filters › Stalled",
                trigger: `.o_filter_menu .o-dropdown-item:contains('${stalled}')`,
                run: "click",
            },
            {
                content: "two facets: My Pipeline and Stalled, not 'My Pipeline or Stalled'",
                trigger: `.o_searchview:has(.o_searchview_facet + .o_searchview_facet .o_facet_value:contains('${stalled}'))`,
            },
            {
                content: "only the rep's stalled deals",
                trigger: ".o_kanban_view:not(:has(.o_kanban_record:contains('Fresh deal'))):not(:has(.o_kanban_record:contains('Other rep stalled'))) .o_kanban_record:contains('Proposal deal')",
            },
        ];
    },
});

registry.category("web_tour.tours").add("crm_sales_sop_rep_panel", {
    steps: () => [
        {
            content: "the form says Stalled",
            trigger: ".o_form_view .o_crm_sop_stalled:visible",
        },
        {
            content: "the SOP stage is the one of Proposition",
            trigger: ".o_field_widget[name=sop_stage_id]:contains('Product Pitch'), .o_field_widget[name=sop_stage_id]:contains('产品推介')",
        },
        {
            content: "the left-behind tasks are marked as such",
            trigger: ".o_crm_sop_tasks .text-bg-warning",
        },
        {
            content: "the next step is not cut and 'Do it' is on one line",
            trigger: ".o_crm_sop_next:visible button[name=action_sop_next]",
            run() {
                const next = document.querySelector(".o_crm_sop_next");
                const name = next.querySelector(".o_crm_sop_next_name");
                for (const el of [name, ...name.querySelectorAll("*")]) {
                    if (el.scrollWidth > el.clientWidth + 1) {
                        throw new Error(`next step cut: ${el.outerHTML}`);
                    }
                }
                const button = next.querySelector("button[name=action_sop_next]");
                const range = document.createRange();
                range.selectNodeContents(button);
                const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
                if (lines.size !== 1) {
                    throw new Error(`"Do it" on ${lines.size} lines`);
                }
            },
        },
        {
            content: "without history the card says what it will show",
            trigger: ".o_crm_sop_uplift .o_crm_sop_uplift_not_enough",
        },
        {
            content: "no revenue: no 'Worth if won', and the task list is labelled",
            trigger: ".o_crm_sop_uplift:not(:has(.o_crm_sop_uplift_worth)) .o_crm_sop_uplift_tasks_label",
        },
    ],
});

// The prediction card, record after record with the pager: the answer for a
// deal left behind comes late and does not replace the shown deal's.
registry.category("web_tour.tours").add("crm_sales_sop_uplift_fast", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "open the fresh deal (revenue: the card says what it is worth)",
            trigger: ".o_kanban_record:contains('Fresh deal')",
            run: "click",
        },
        {
            trigger: ".o_last_breadcrumb_item:contains('Fresh deal')",
        },
        {
            trigger: ".o_crm_sop_uplift .o_crm_sop_uplift_worth",
        },
        {
            content: "next deal: its card's answer is held back",
            trigger: ".o_pager_next",
            run() {
                holdAnswer(['"get_sop_uplift"']);
                document.querySelector(".o_pager_next").click();
            },
        },
        {
            trigger: ".o_last_breadcrumb_item:contains('Proposal deal')",
        },
        {
            content: "back to the fresh deal before that answer is in",
            trigger: ".o_pager_previous",
            run: "click",
        },
        {
            trigger: "body.o_sop_late_answer_in .o_last_breadcrumb_item:contains('Fresh deal')",
        },
        {
            content: "the card is the fresh deal's (worth), not the late one of the proposal (none)",
            trigger: ".o_crm_sop_uplift .o_crm_sop_uplift_worth:contains('5,000')",
        },
    ],
});
