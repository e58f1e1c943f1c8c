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
            content: "the operator is wide enough to read (it was a sliver)",
            trigger: ".o_field_widget[name=domain] .o_tree_editor_condition > .o_tree_editor_editor:nth-child(2) select",
            run() {
                const width = this.anchor.getBoundingClientRect().width;
                if (width < 120) {
                    throw new Error(`the operator is ${width}px wide`);
                }
                if (this.anchor.scrollWidth > this.anchor.clientWidth + 1) {
                    throw new Error(`the operator is cut: ${this.anchor.value}`);
                }
            },
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
        {
            content: "no technical field: blacklist, sanitized copies, ids, the engine's own results",
            trigger: ".o_model_field_selector_popover:has(.o_model_field_selector_popover_item_name:contains('Salesperson'))" +
                ":not(:has(.o_model_field_selector_popover_item_name:contains('Blacklisted')))" +
                ":not(:has(.o_model_field_selector_popover_item_name:contains('Sanitized')))" +
                ":not(:has(.o_model_field_selector_popover_item_name:contains('Normalized')))" +
                ":not(:has(.o_model_field_selector_popover_item_name:contains('Last Updated by')))" +
                ":not(:has(.o_model_field_selector_popover_item_name:contains('SOP Progress')))",
        },
    ],
});

// Issue 15, item 9: a manager builds a playbook top-down, from a new
// playbook: a new stage in its dialog, a new task in the stage's dialog,
// Save & Close twice, then Save. The dialogs do not ask for the parent that
// does not exist yet: the playbook, then the stage, sets it.
const ACTIVE = ".o_dialog:not(.o_inactive_modal)";
registry.category("web_tour.tours").add("crm_sales_sop_manager_top_down", {
    steps: () => [
        {
            content: "name the new playbook",
            trigger: ".o_form_view .o_field_widget[name=name] input",
            run: "edit Top-down Playbook",
        },
        {
            content: "add a stage",
            trigger: ".o_field_widget[name=stage_ids] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            content: "name the stage",
            trigger: `${ACTIVE} .o_field_widget[name=name] input`,
            run: "edit Greet the Visitor",
        },
        {
            content: "the stage dialog does not ask for its playbook",
            trigger: `${ACTIVE} .o_form_view:not(:has(.o_field_widget[name=template_id]))`,
        },
        {
            content: "add a task to the new stage",
            trigger: `${ACTIVE} .o_field_widget[name=task_template_ids] .o_field_x2many_list_row_add a`,
            run: "click",
        },
        {
            content: "the task dialog opens over the stage's",
            trigger: `${ACTIVE} .o_field_widget[name=field_ids]`,
        },
        {
            content: "name the task",
            trigger: `${ACTIVE} .o_field_widget[name=name] input`,
            run: "edit Offer a drink",
        },
        {
            content: "the task dialog asks neither for its stage nor its playbook",
            trigger: `${ACTIVE} .o_form_view:not(:has(.o_field_widget[name=stage_id])):not(:has(.o_field_widget[name=template_id]))`,
        },
        {
            content: "tick it by hand",
            trigger: `${ACTIVE} .o_field_widget[name=kind] select`,
            run: `select "manual"`,
        },
        {
            content: "Save & Close the task",
            trigger: `${ACTIVE} .modal-footer .o_form_button_save`,
            run: "click",
        },
        {
            content: "the task is listed in the stage",
            trigger: `${ACTIVE} .o_field_widget[name=task_template_ids] .o_data_row:contains('Offer a drink')`,
        },
        {
            content: "Save & Close the stage",
            trigger: `${ACTIVE} .modal-footer .o_form_button_save`,
            run: "click",
        },
        {
            content: "the stage is listed in the playbook, no dialog left",
            trigger: "body:not(:has(.modal)) .o_field_widget[name=stage_ids] .o_data_row:contains('Greet the Visitor')",
        },
        {
            content: "save the playbook",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "saved",
            trigger: ".o_form_saved",
        },
    ],
});

// A sales manager deletes a playbook that a large team follows: it is
// archived instead while the setup job moves the team's open deals, and a
// notice says so (the server's bus notification; a test cursor drops the
// bus's post-commit wake-up, so the test reads the notice the server
// queued, not the toast).
registry.category("web_tour.tours").add("crm_sales_sop_manager_delete_playbook", {
    steps: () => [
        {
            content: "open the form's actions",
            trigger: ".o_form_view .o_cp_action_menus .dropdown-toggle",
            run: "click",
        },
        {
            content: "delete the playbook",
            trigger: ".o-dropdown--menu .dropdown-item:contains('Delete')",
            run: "click",
        },
        {
            content: "confirm",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "the deletion went through without an error",
            trigger: "body:not(:has(.modal)):not(:has(.o_error_dialog)) .o_view_controller",
        },
    ],
});
