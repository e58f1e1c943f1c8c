/** @odoo-module **/

import { registry } from "@web/core/registry";
import { formatMonetary } from "@web/views/fields/formatters";
import { kanbanView } from "@web/views/kanban/kanban_view";
import { KanbanRenderer } from "@web/views/kanban/kanban_renderer";
import { listView } from "@web/views/list/list_view";
import { ListRenderer } from "@web/views/list/list_renderer";

/** The id of a many2one value, however the web client loaded it. */
function m2oId(value) {
    if (!value) {
        return 0;
    }
    if (Array.isArray(value)) {
        return value[0];
    }
    return typeof value === "object" ? value.id : value;
}

/**
 * My SOP Day's tasks by deal, in the order the server sorted them (stalled
 * deals first, then what is at stake): one header per deal with what the rep
 * needs to pick it (customer, pipeline stage, at stake, stalled), then its
 * next steps. Grouped once per render, whatever column the list is sorted by
 * (as the SOP panel groups its tasks by SOP stage).
 */
export function sopDealGroups(records) {
    const groups = new Map();
    for (const record of records) {
        const data = record.data;
        const leadId = m2oId(data.lead_id);
        if (!groups.has(leadId)) {
            groups.set(leadId, {
                id: leadId,
                name: data.lead_name || "",
                customer: data.lead_partner_name || "",
                stage: data.lead_stage_name || "",
                stalled: data.lead_stalled,
                atStake: data.lead_prorated_revenue
                    ? formatMonetary(data.lead_prorated_revenue, {
                          currencyId: m2oId(data.lead_currency_id),
                      })
                    : "",
                records: [],
            });
        }
        groups.get(leadId).records.push(record);
    }
    return [...groups.values()];
}

export class SopMyDayListRenderer extends ListRenderer {
    static rowsTemplate = "crm_sales_sop.SopMyDayListRenderer.Rows";

    get sopDeals() {
        return sopDealGroups(this.props.list.records);
    }
}

export class SopMyDayKanbanRenderer extends KanbanRenderer {
    static template = "crm_sales_sop.SopMyDayKanbanRenderer";

    getGroupsOrRecords() {
        if (this.props.list.isGrouped) {
            return super.getGroupsOrRecords();
        }
        return sopDealGroups(this.props.list.records).flatMap((deal) =>
            deal.records.map((record, index) => ({
                record,
                key: record.id,
                sopDeal: index === 0 ? deal : false,
            }))
        );
    }
}

registry.category("views").add("sop_my_day_list", {
    ...listView,
    Renderer: SopMyDayListRenderer,
});

registry.category("views").add("sop_my_day_kanban", {
    ...kanbanView,
    Renderer: SopMyDayKanbanRenderer,
});
