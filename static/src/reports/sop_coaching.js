/** @odoo-module **/

import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { KeepLast } from "@web/core/utils/concurrency";
import { useService } from "@web/core/utils/hooks";
import { formatFloat, formatMonetary } from "@web/views/fields/formatters";
import { Component, onWillStart, useState } from "@odoo/owl";

/**
 * The coaching queue: a team's open deals, the ones where pushing one SOP
 * task is worth the most first, with the rep and the task
 * (crm.sop.coaching.get_queue). Below the history floor, by expected revenue.
 */
export class SopCoaching extends Component {
    static template = "crm_sales_sop.SopCoaching";
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.keepLast = new KeepLast();
        this.action = useService("action");
        this.state = useState({ teams: [], teamId: false, queue: null });
        onWillStart(async () => {
            this.state.teams = await this.orm.searchRead("crm.team", [], ["name"]);
            this.state.teamId = this.state.teams[0] ? this.state.teams[0].id : false;
            await this.load();
        });
    }

    async load() {
        // clicked fast: only the last answer is shown
        this.state.queue = await this.keepLast.add(
            this.state.teamId
                ? this.orm.call("crm.sop.coaching", "get_queue", [this.state.teamId], {
                      limit: 50,
                  })
                : Promise.resolve(null)
        );
    }

    async onTeam(ev) {
        const value = parseInt(ev.target.value);
        this.state.teamId = Number.isNaN(value) ? false : value;
        await this.load();
    }

    money(value) {
        return formatMonetary(value, {
            currencyId: this.state.queue.currency_id,
            digits: [16, 0],
        });
    }

    percent(value) {
        return value === false ? "–" : `${formatFloat(value, { digits: [16, 1] })} %`;
    }

    get floorMessage() {
        const queue = this.state.queue;
        return _t(
            "Not enough history in this team to estimate what a task is worth (%(won)s won and %(lost)s lost deals; %(min_won)s won and %(min_lost)s lost are needed): deals are ranked by expected revenue, with their next step.",
            { won: queue.won, lost: queue.lost, min_won: queue.min_won, min_lost: queue.min_lost }
        );
    }

    openDeal(row) {
        this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "crm.lead",
            res_id: row.lead_id,
            views: [[false, "form"]],
        });
    }
}

registry.category("actions").add("crm_sales_sop.coaching", SopCoaching);
