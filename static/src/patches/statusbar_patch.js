/** @odoo-module **/

import { StatusBarField } from "@web/views/fields/statusbar/statusbar_field";
import { patch } from "@web/core/utils/patch";

/**
 * A stage click on an opportunity saves at once; when the server refuses the
 * move (a blocking Sales SOP gate), the form goes back to the saved stage
 * instead of staying dirty on the refused one, so the rep can go on (fill the
 * missing tasks) without finding the discard button first.
 */
patch(StatusBarField.prototype, {
    async selectItem(item) {
        const { name, record } = this.props;
        if (record.resModel !== "crm.lead") {
            return super.selectItem(...arguments);
        }
        const previous = record.data[name];
        const wasDirty = await record.isDirty();
        try {
            // core's: update the stage, then save
            await super.selectItem(...arguments);
        } catch (error) {
            if (wasDirty) {
                // keep what the rep typed elsewhere, only the stage goes back
                await record.update({ [name]: previous });
            } else {
                await record.discard();
            }
            // recompute the items now: the component skips it while it is
            // adjusting to its width, and would show the refused stage
            Object.assign(this.items, this.getSortedItems());
            this.render();
            throw error;
        }
    },
});
