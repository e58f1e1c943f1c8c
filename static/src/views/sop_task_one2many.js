/** @odoo-module **/

import { registry } from "@web/core/registry";
import { ListRenderer } from "@web/views/list/list_renderer";
import { X2ManyField, x2ManyField } from "@web/views/fields/x2many/x2many_field";

/**
 * The SOP panel's task list: tasks come ordered by SOP stage, open ones first
 * (see crm.sop.task._order); this renderer adds a header row per stage so the
 * rep reads them grouped, like a grouped list, without its folding.
 */
export class SopTaskListRenderer extends ListRenderer {
    static recordRowTemplate = "crm_sales_sop.SopTaskListRenderer.RecordRow";

    sopStage(record) {
        const value = record.data.stage_id;
        if (!value) {
            return false;
        }
        const id = Array.isArray(value) ? value[0] : value.id;
        return { id, name: record.data.stage_name };
    }

    sopStageHeader(record, index) {
        const stage = this.sopStage(record);
        if (!stage) {
            return false;
        }
        const previous = index ? this.sopStage(this.props.list.records[index - 1]) : false;
        if (previous && previous.id === stage.id) {
            return false;
        }
        const records = this.props.list.records.filter(
            (r) => this.sopStage(r) && this.sopStage(r).id === stage.id
        );
        const done = records.filter((r) => r.data.state === "done").length;
        return { name: stage.name, done, total: records.length };
    }
}

export class SopTaskOne2ManyField extends X2ManyField {
    static components = { ...X2ManyField.components, ListRenderer: SopTaskListRenderer };
}

registry.category("fields").add("sop_task_one2many", {
    ...x2ManyField,
    component: SopTaskOne2ManyField,
});
