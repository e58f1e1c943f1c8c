/** @odoo-module **/

import { registry } from "@web/core/registry";

// A sales manager reads and edits a condition: it is shown in words, the
// editor offers the opportunity's own fields only (no path through Customer),
// and the SOP stage picker names the playbook.
registry.category("web_tour.tours").add("crm_sales_sop_manager_condition", {
    steps: () => [
        {
            content: "the condition reads in words",
            trigger: ".o_field_widget[name=condition_words]:contains('Priority is one of')",
        },
        {
            content: "the SOP stage names its playbook",
            trigger: ".o_field_widget[name=stage_id] input:value('Standard Sales SOP / Negotiation')",
        },
        {
            content: "open the field of the condition",
            trigger: ".o_field_widget[name=domain] .o_model_field_selector",
            run: "click",
        },
        {
            content: "the opportunity's own fields are offered",
            trigger: ".o_model_field_selector_popover_item_name:contains('Expected Revenue')",
        },
        {
            content: "a relation cannot be followed (Customer > Name is refused on the server)",
            trigger: ".o_model_field_selector_popover:has(.o_model_field_selector_popover_item_name:contains('Customer')):not(:has(.o_model_field_selector_popover_relation_icon))",
        },
        {
            content: "no one2many field (what the server refuses is not offered)",
            trigger: ".o_model_field_selector_popover:not(:has(.o_model_field_selector_popover_item_name:contains('Activities')))",
        },
    ],
});
