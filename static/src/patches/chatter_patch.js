/** @odoo-module **/

import { Chatter } from "@mail/chatter/web_portal/chatter";
import { patch } from "@web/core/utils/patch";

/**
 * An activity marked done (or scheduled) in the chatter can complete a SOP
 * task: the form showing the SOP panel reloads so that the task turns done
 * (or shows its planned activity) without a page reload.
 */
patch(Chatter.prototype, {
    onActivityChanged(thread) {
        super.onActivityChanged(...arguments);
        const record = this.props.webRecord;
        if (record?.resModel === "crm.lead" && "sop_task_ids" in record.activeFields) {
            this.reloadParentView();
        }
    },
});
