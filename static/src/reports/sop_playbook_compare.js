/** @odoo-module **/

import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { KeepLast } from "@web/core/utils/concurrency";
import { useService } from "@web/core/utils/hooks";
import { formatFloat } from "@web/views/fields/formatters";
import { Component, onWillStart, useState } from "@odoo/owl";

/**
 * Playbooks compared: two playbooks side by side over the deals closed in a
 * period (of a team), their won rates with 95% intervals, and whether the
 * difference is real. Everything is computed on the server
 * (crm.sop.playbook.report.compare), which decides what the user may see.
 */
export class SopPlaybookCompare extends Component {
    static template = "crm_sales_sop.SopPlaybookCompare";
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.keepLast = new KeepLast();
        this.state = useState({
            playbooks: [],
            teams: [],
            first: false,
            second: false,
            teamId: false,
            dateFrom: "",
            dateTo: "",
            result: null,
        });
        onWillStart(async () => {
            const [playbooks, teams] = await Promise.all([
                this.orm.searchRead("crm.sop.template", [], ["name"], {
                    context: { active_test: false },
                }),
                this.orm.searchRead("crm.team", [], ["name"]),
            ]);
            this.state.playbooks = playbooks;
            this.state.teams = teams;
            this.state.first = playbooks[0] ? playbooks[0].id : false;
            this.state.second = playbooks[1] ? playbooks[1].id : false;
            await this.load();
        });
    }

    async load() {
        const { first, second, teamId, dateFrom, dateTo } = this.state;
        const ids = [first, second].filter((id) => id);
        // clicked fast: only the last answer is shown
        this.state.result = await this.keepLast.add(
            this.orm.call("crm.sop.playbook.report", "compare", [ids], {
                date_from: dateFrom || false,
                date_to: dateTo || false,
                team_id: teamId,
            })
        );
    }

    async onSelectId(field, ev) {
        const value = parseInt(ev.target.value);
        this.state[field] = Number.isNaN(value) ? false : value;
        await this.load();
    }

    async onDate(field, ev) {
        this.state[field] = ev.target.value;
        await this.load();
    }

    percent(value) {
        return value === false ? "–" : `${formatFloat(value, { digits: [16, 1] })} %`;
    }

    days(value) {
        return value === false ? "–" : formatFloat(value, { digits: [16, 1] });
    }

    get best() {
        const rows = this.state.result.playbooks;
        if (rows.length < 2 || !rows[0].deals || !rows[1].deals) {
            return false;
        }
        return rows[0].won_rate >= rows[1].won_rate ? rows[0] : rows[1];
    }

    get verdict() {
        const result = this.state.result;
        const best = this.best;
        if (!best) {
            return _t("Pick two playbooks with closed deals to compare them.");
        }
        const pValue = formatFloat(result.p_value, { digits: [16, 3] });
        if (result.significant) {
            return _t(
                "%(name)s wins, and the difference is real (p = %(p)s): it is unlikely to be luck.",
                { name: best.name, p: pValue }
            );
        }
        return _t(
            "%(name)s is ahead, but the difference may be luck (p = %(p)s): keep both and look again with more deals.",
            { name: best.name, p: pValue }
        );
    }

    /** The position of a rate on the 0-100 bar. */
    barStyle(row) {
        if (row.ci_low === false) {
            return "display: none;";
        }
        return `left: ${row.ci_low}%; width: ${Math.max(row.ci_high - row.ci_low, 0.5)}%;`;
    }

    markStyle(row) {
        return `left: ${row.won_rate || 0}%;`;
    }
}

registry.category("actions").add("crm_sales_sop.playbook_compare", SopPlaybookCompare);
