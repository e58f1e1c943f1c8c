/** @odoo-module **/

import { _t } from "@web/core/l10n/translation";
import { browser } from "@web/core/browser/browser";
import { Dialog } from "@web/core/dialog/dialog";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";
import { Component, onWillStart, useState } from "@odoo/owl";
import { showScriptSent } from "./sop_script_sent";

/**
 * Copy: the rendered script goes to the clipboard (for WeChat or another
 * messenger); the dialog shows it too, for a phone that refuses the
 * clipboard, and records the send only when the rep confirms "Sent".
 */
export class SopScriptCopyDialog extends Component {
    static template = "crm_sales_sop.SopScriptCopyDialog";
    static components = { Dialog };
    static props = {
        params: Object,
        copied: Boolean,
        close: Function,
    };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.notification = useService("notification");
    }

    async onSent() {
        const { model, res_id, template_id, lang } = this.props.params;
        if (model === "crm.sop.task") {
            await this.orm.call(model, "action_sop_send_script", [[res_id]], {
                channel: "copy",
                lang: lang || false,
            });
        } else {
            await this.orm.call(model, "action_sop_send_script", [[res_id], template_id], {
                channel: "copy",
                lang: lang || false,
            });
        }
        this.notification.add(_t("Script recorded as sent."), { type: "success" });
        // closing ends the client action: the deal's record reloads in place
        // (see copyScriptAction), the form keeps its scroll position
        this.props.close();
    }
}

/**
 * Ends once the dialog is closed (Sent or not) with a window close action:
 * as a wizard's, it runs the caller's onClose, which reloads the record
 * only (the form's button reload, the Scripts menu's record.load()) instead
 * of reloading the whole form (soft_reload remounted it: back to the top).
 */
async function copyScriptAction(env, action) {
    const params = action.params;
    let copied = false;
    try {
        await browser.navigator.clipboard.writeText(params.body);
        copied = true;
    } catch {
        // refused (no focus, no permission): the dialog shows the text to
        // copy by hand
    }
    await new Promise((resolve) => {
        env.services.dialog.add(SopScriptCopyDialog, { params, copied }, { onClose: resolve });
    });
    return { type: "ir.actions.act_window_close" };
}

registry.category("actions").add("crm_sales_sop.copy_script", copyScriptAction);

/**
 * The Scripts menu of the SOP panel: the scripts of the deal's SOP stage
 * first, each sent in one click by email (or SMS), copied, or edited first
 * in the composer; the language follows the customer's and can be switched.
 */
export class SopScriptsDialog extends Component {
    static template = "crm_sales_sop.SopScriptsDialog";
    static components = { Dialog };
    static props = {
        record: Object,
        close: Function,
    };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.notification = useService("notification");
        this.state = useState({ data: null, lang: false, busy: false });
        onWillStart(async () => {
            const data = await this.orm.call("crm.lead", "sop_get_scripts", [
                [this.props.record.resId],
            ]);
            this.state.data = data;
            this.state.lang = data.lang;
        });
    }

    /** The script's name and description in the language chosen. */
    scriptName(script) {
        return (script.names && script.names[this.state.lang]) || script.name;
    }

    scriptDescription(script) {
        return (script.descriptions && script.descriptions[this.state.lang]) ?? script.description;
    }

    get channelLabels() {
        return { email: _t("Email"), sms: _t("SMS"), copy: _t("Copy") };
    }

    async run(script, channel) {
        if (this.state.busy) {
            return;
        }
        this.state.busy = true;
        const leadIds = [this.props.record.resId];
        try {
            if (channel === "copy") {
                const action = await this.orm.call(
                    "crm.lead",
                    "action_sop_copy_script",
                    [leadIds, script.id],
                    { lang: this.state.lang }
                );
                this.props.close();
                await this.action.doAction(action, {
                    onClose: () => this.props.record.load(),
                });
            } else if (channel === "edit") {
                const action = await this.orm.call(
                    "crm.lead",
                    "action_sop_edit_script",
                    [leadIds, script.id],
                    { lang: this.state.lang }
                );
                this.props.close();
                await this.action.doAction(action, {
                    onClose: () => this.props.record.load(),
                });
            } else {
                const action = await this.orm.call(
                    "crm.lead",
                    "action_sop_send_script",
                    [leadIds, script.id],
                    { channel, lang: this.state.lang }
                );
                this.props.close();
                const record = this.props.record;
                showScriptSent(this.env, action.params, { onUndone: () => record.load() });
                await record.load();
            }
        } finally {
            this.state.busy = false;
        }
    }
}

export class SopScriptsButton extends Component {
    static template = "crm_sales_sop.SopScriptsButton";
    static props = { ...standardWidgetProps };

    setup() {
        this.dialog = useService("dialog");
    }

    async onClick() {
        const record = this.props.record;
        if (record.isNew || record.dirty) {
            if (!(await record.save())) {
                return;
            }
        }
        this.dialog.add(SopScriptsDialog, { record });
    }
}

registry.category("view_widgets").add("sop_scripts", { component: SopScriptsButton });
