/** @odoo-module **/

import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";
import { Component, useState } from "@odoo/owl";

/**
 * What the rep is told once a script left in one tap: the script and to
 * whom; while its email waits in the outgoing queue, an Undo takes it back
 * (crm.sop.script.send.action_sop_undo, checked on the server: only the rep
 * who sent it, only before it left).
 *
 * @param {Object} env
 * @param {Object} params the server's notice (_sop_sent_notice)
 * @param {Object} [options]
 * @param {Function} [options.onUndone] called once the send is taken back
 */
export function showScriptSent(env, params, { onUndone } = {}) {
    const { notification, orm, action } = env.services;
    const undoable = params.undo_seconds > 0;
    const close = notification.add(params.message, {
        title: params.title,
        type: params.type || "success",
        className: "o_crm_sop_script_sent",
        autocloseDelay: undoable ? params.undo_seconds * 1000 : undefined,
        buttons: undoable
            ? [
                  {
                      name: _t("Undo"),
                      primary: true,
                      onClick: async () => {
                          close();
                          const result = await orm.call(
                              "crm.sop.script.send",
                              "action_sop_undo",
                              [[params.send_id]]
                          );
                          await onUndone?.();
                          await action.doAction(result);
                      },
                  },
              ]
            : [],
    });
    return close;
}

function scriptSentAction(env, action) {
    showScriptSent(env, action.params);
}

registry.category("actions").add("crm_sales_sop.script_sent", scriptSentAction);

/**
 * Send / Send again of a script task (SopTaskButton shows it): one tap sends,
 * the toast says what went to whom, with Undo. The list does not reload
 * under the rep's finger: the button stays where it is and reads "Sent"
 * until the view is next loaded.
 */
export class SopTaskSendButton extends Component {
    static template = "crm_sales_sop.SopTaskSendButton";
    static props = { ...standardWidgetProps };

    setup() {
        this.orm = useService("orm");
        this.state = useState({ busy: false, sent: false });
    }

    get shown() {
        return ["send", "send_again"].includes(this.props.record.data.button);
    }

    get again() {
        return this.props.record.data.button === "send_again";
    }

    async onClick(ev) {
        ev.stopPropagation();
        if (this.state.busy || this.state.sent) {
            return;
        }
        this.state.busy = true;
        try {
            const action = await this.orm.call(
                "crm.sop.task",
                "action_sop_send_script",
                [[this.props.record.resId]]
            );
            this.state.sent = true;
            showScriptSent(this.env, action.params, {
                onUndone: () => {
                    this.state.sent = false;
                },
            });
        } finally {
            this.state.busy = false;
        }
    }
}

// views the panel no longer uses but a database may still hold (customised
// before 18.0.1.4.0, when each view named it beside its task buttons) keep
// working: the task button (sop_task_button) shows it now
registry.category("view_widgets").add("sop_task_send", { component: SopTaskSendButton });
