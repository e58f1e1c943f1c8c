/** @odoo-module **/

import { registry } from "@web/core/registry";
import { KanbanRenderer } from "@web/views/kanban/kanban_renderer";
import { ListRenderer } from "@web/views/list/list_renderer";
import { X2ManyField, x2ManyField } from "@web/views/fields/x2many/x2many_field";

/**
 * The tasks of the SOP panel grouped by SOP stage, in the stages' order, each
 * with its count of done tasks over applicable ones (tasks set aside as not
 * applicable are not counted). Computed once per render (as hr_skills groups
 * its skills), whatever column the rep sorts by.
 */
export function sopStageGroups(records) {
    const groups = new Map();
    for (const record of records) {
        const stage = record.data.stage_id;
        const id = (stage && (Array.isArray(stage) ? stage[0] : stage.id)) || 0;
        if (!groups.has(id)) {
            groups.set(id, {
                id,
                name: record.data.stage_name || "",
                sequence: record.data.stage_sequence || 0,
                records: [],
                done: 0,
                total: 0,
            });
        }
        const group = groups.get(id);
        group.records.push(record);
        if (record.data.state !== "na") {
            group.total++;
            if (record.data.state === "done") {
                group.done++;
            }
        }
    }
    return [...groups.values()].sort((a, b) => a.sequence - b.sequence || a.id - b.id);
}

export class SopTaskListRenderer extends ListRenderer {
    static rowsTemplate = "crm_sales_sop.SopTaskListRenderer.Rows";

    get sopGroups() {
        return sopStageGroups(this.props.list.records);
    }
}

export class SopTaskKanbanRenderer extends KanbanRenderer {
    static template = "crm_sales_sop.SopTaskKanbanRenderer";

    getGroupsOrRecords() {
        if (this.props.list.isGrouped) {
            return super.getGroupsOrRecords();
        }
        return sopStageGroups(this.props.list.records).flatMap((group) =>
            group.records.map((record, index) => ({
                record,
                key: record.id,
                sopHeader: index === 0 ? group : false,
            }))
        );
    }
}

export class SopTaskOne2ManyField extends X2ManyField {
    static components = {
        ...X2ManyField.components,
        ListRenderer: SopTaskListRenderer,
        KanbanRenderer: SopTaskKanbanRenderer,
    };
}

registry.category("fields").add("sop_task_one2many", {
    ...x2ManyField,
    component: SopTaskOne2ManyField,
});
