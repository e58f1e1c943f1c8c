/** @odoo-module **/

import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { KeepLast } from "@web/core/utils/concurrency";
import { useService } from "@web/core/utils/hooks";
import { useRecordObserver } from "@web/model/relational_model/utils";
import { formatMonetary } from "@web/views/fields/formatters";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";
import { Component, useState } from "@odoo/owl";

/**
 * The closing prediction on the SOP panel: the deal's chance now, what it is
 * worth if won, and for each next open task how much doing it is expected to
 * raise the chance, with the evidence of the team's closed deals
 * (crm.lead.get_sop_uplift). Without enough history it says so and shows no
 * percentage.
 */
export class SopUplift extends Component {
    static template = "crm_sales_sop.SopUplift";
    static props = { ...standardWidgetProps };

    setup() {
        this.keepLast = new KeepLast();
        this.orm = useService("orm");
        this.state = useState({ data: null });
        useRecordObserver(async (record) => {
            if (!record.resId) {
                // a new record: an answer for the previous one is dropped
                this.keepLast.add(Promise.resolve());
                this.key = null;
                this.state.data = null;
                return;
            }
            // read after the panel's own data changed (a task done...)
            const key = `${record.resId}-${record.data.sop_progress}-${record.data.probability}`;
            if (key !== this.key) {
                this.key = key;
                // record after record (the pager): only the last answer shows
                this.state.data = await this.keepLast.add(
                    this.orm.call("crm.lead", "get_sop_uplift", [[record.resId]])
                );
            }
        });
    }

    get worth() {
        const data = this.state.data;
        return formatMonetary(data.expected_revenue || 0, { currencyId: data.currency_id });
    }

    percent(value) {
        return `${Math.round(value)}%`;
    }

    evidence(task) {
        return _t("done: won %(won)s of %(total)s deals; not done: won %(won_without)s of %(total_without)s", {
            won: task.won_with,
            total: task.won_with + task.lost_with,
            won_without: task.won_without,
            total_without: task.won_without + task.lost_without,
        });
    }

    get stageDays() {
        const data = this.state.data;
        if (data.won_median_days === false) {
            return _t("In this SOP stage for %(days)s working days.", { days: data.stage_days });
        }
        return _t(
            "In this SOP stage for %(days)s working days; won deals took %(median)s (median of %(count)s).",
            { days: data.stage_days, median: data.won_median_days, count: data.won_stage_deals }
        );
    }

    get tasksLabel() {
        return this.state.data.enough_history
            ? _t("Open tasks and how much doing each one raises the chance to close:")
            : _t("Open tasks to do next:");
    }

    get notEnough() {
        const data = this.state.data;
        return _t(
            "Not enough closed deals in this team yet to tell what each step is worth: %(won)s won and %(lost)s lost so far (%(min_won)s won and %(min_lost)s lost needed). Then this card will show the chance to close this deal now and how much each open task raises it.",
            { won: data.won, lost: data.lost, min_won: data.min_won, min_lost: data.min_lost }
        );
    }
}

registry.category("view_widgets").add("sop_uplift", { component: SopUplift });
