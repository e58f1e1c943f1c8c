/** @odoo-module **/

import { deserializeDate, formatDate } from "@web/core/l10n/dates";
import { _t } from "@web/core/l10n/translation";
import { RainbowMan } from "@web/core/effects/rainbow_man";
import { registry } from "@web/core/registry";
import { user } from "@web/core/user";
import { KeepLast } from "@web/core/utils/concurrency";
import { useService } from "@web/core/utils/hooks";
import { formatFloat, formatMonetary } from "@web/views/fields/formatters";
import { Component, onWillStart, useState } from "@odoo/owl";

/**
 * The achievement board (成就榜): the top salespeople, teams or companies by
 * won revenue, high-value customers, SOP tasks completed or SOP adherence, over
 * the current week, month or quarter; the user's own row always shown, with
 * its move since the previous period. Everything is computed on the server
 * (crm.sop.board.get_board), which decides what the user may see.
 */
export class SopBoard extends Component {
    static template = "crm_sales_sop.SopBoard";
    static props = ["*"];
    static components = { RainbowMan };

    setup() {
        this.keepLast = new KeepLast();
        this.orm = useService("orm");
        this.notification = useService("notification");
        this.companyService = useService("company");
        this.companies = this.companyService.activeCompanyIds.map((id) => ({
            id,
            name: this.companyService.getCompany(id).name,
        }));
        this.state = useState({
            metric: "won_revenue",
            period: "month",
            groupBy: "user",
            teamId: false,
            companyId: false,
            teams: [],
            board: null,
            // the rainbow man's message while it is shown
            reward: false,
            // the board is shown and its celebration decided (tours wait on it)
            settled: false,
        });
        onWillStart(async () => {
            this.state.teams = await this.orm.searchRead("crm.team", [], ["name"]);
            await this.load();
        });
    }

    async load() {
        const { metric, period, groupBy, teamId, companyId } = this.state;
        const kwargs = { group_by: groupBy, team_id: teamId, company_id: companyId };
        this.state.settled = false;
        // clicked fast: only the last answer is shown
        const board = await this.keepLast.add(
            this.orm.call("crm.sop.board", "get_board", [metric, period], {
                ...kwargs,
                top: 10,
            })
        );
        this.state.board = board;
        const me = board.me;
        const inTopThree = Boolean(me && me.value > 0 && me.rank <= 3);
        if (inTopThree !== board.celebrated) {
            // entered the top three (or left it) since last remembered: the
            // server remembers it, get_board stays read-only
            const entered = await this.keepLast.add(
                this.orm.call("crm.sop.board", "sop_board_celebrate", [metric, period], kwargs)
            );
            if (entered) {
                this.celebrate(me.rank);
            }
        }
        this.state.settled = true;
    }

    /**
     * Rainbow man when the user (or their team, company) enters the top three,
     * once per entry: shown in the board, under the metric tabs, never over
     * them.
     */
    celebrate(rank) {
        const message = _t("Top three! You are number %(rank)s on the board.", { rank });
        if (user.showEffect) {
            this.state.reward = message;
        } else {
            this.notification.add(message);
        }
    }

    closeReward() {
        this.state.reward = false;
    }

    async onChange(field, value) {
        this.state[field] = value;
        await this.load();
    }

    onSelectId(field, ev) {
        const value = parseInt(ev.target.value);
        return this.onChange(field, Number.isNaN(value) ? false : value);
    }

    // the tabs and filters: their labels come with the board (get_board)
    get metrics() {
        return this.state.board.labels.metrics;
    }

    get periods() {
        return this.state.board.labels.periods;
    }

    get groupBys() {
        return this.state.board.labels.group_bys;
    }

    /** A day of the period ("2031-06-01") in the user's date format. */
    formatDay(day) {
        return formatDate(deserializeDate(day));
    }

    formatValue(value) {
        const board = this.state.board;
        if (board.monetary) {
            return formatMonetary(value, { currencyId: board.currency_id, digits: [16, 0] });
        }
        if (this.state.metric === "adherence") {
            return `${formatFloat(value, { digits: [16, 0] })} %`;
        }
        return formatFloat(value, { digits: [16, this.state.groupBy === "user" ? 0 : 1] });
    }

    get meInRows() {
        const me = this.state.board.me;
        return me && this.state.board.rows.some((row) => row.id === me.id);
    }

    /** "up" / "down" / "same" / "new" of the user's rank since last period. */
    get move() {
        const me = this.state.board.me;
        if (!me) {
            return false;
        }
        if (!me.previous_rank) {
            return "new";
        }
        if (me.rank < me.previous_rank) {
            return "up";
        }
        return me.rank > me.previous_rank ? "down" : "same";
    }

    get moveLabel() {
        const me = this.state.board.me;
        return {
            up: _t("↑ %(count)s since last period", { count: me.previous_rank - me.rank }),
            down: _t("↓ %(count)s since last period", { count: me.rank - me.previous_rank }),
            same: _t("Same rank as last period"),
            new: _t("New on the board"),
        }[this.move];
    }

    isMe(row) {
        return this.state.board.me && this.state.board.me.id === row.id;
    }
}

registry.category("actions").add("crm_sales_sop.sop_board", SopBoard);
