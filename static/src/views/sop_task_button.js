/** @odoo-module **/

import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { ViewButton } from "@web/views/view_button/view_button";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";
import { Component } from "@odoo/owl";

import { SopTaskSendButton } from "@crm_sales_sop/scripts/sop_script_sent";

// the buttons that move the task forward are primary; looking back
// (View, Reopen, Restore) secondary
const PRIMARY = ["fill_in", "schedule", "mark_done"];
const SENDS = ["send", "send_again"];

/**
 * The one button of a SOP task, wherever a task is shown (the SOP panel's
 * list and cards, My SOP Day, the task's form): what the server computes in
 * ``crm.sop.task.button`` (its kind's ``_sop_button_<kind>``), labelled as
 * that selection is, calling ``action_sop_open`` as a view's object button
 * does (the form saved first, the view reloaded after). A script's Send and
 * Send again are the one-tap send (SopTaskSendButton).
 */
export class SopTaskButton extends Component {
    static template = "crm_sales_sop.SopTaskButton";
    static components = { ViewButton, SopTaskSendButton };
    static props = { ...standardWidgetProps, small: { type: Boolean, optional: true } };
    static defaultProps = { small: true };

    get button() {
        return this.props.record.data.button;
    }

    get isSend() {
        return SENDS.includes(this.button);
    }

    get label() {
        const selection = this.props.record.fields.button.selection;
        return (selection.find(([value]) => value === this.button) || [])[1];
    }

    get className() {
        const rank = PRIMARY.includes(this.button) ? "btn-primary" : "btn-secondary";
        return `${rank} ${this.props.small ? "btn-sm " : ""}o_crm_sop_task_button`;
    }

    get title() {
        return this.button === "view"
            ? _t("Shows what this task collected, to read; opens the activity it booked")
            : undefined;
    }
}

registry.category("view_widgets").add("sop_task_button", {
    component: SopTaskButton,
    fieldDependencies: [{ name: "button", type: "selection" }],
    // options="{'small': false}": a form's header, where buttons are not small
    extractProps: ({ options }) => ({ small: options.small !== false }),
});
