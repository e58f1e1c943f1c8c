/** @odoo-module **/

import { onWillStart } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { DomainSelector } from "@web/core/domain_selector/domain_selector";
import { getDomainDisplayedOperators } from "@web/core/domain_selector/domain_selector_operator_editor";
import { getOperatorEditorInfo } from "@web/core/tree_editor/tree_editor_operator_editor";
import { DomainField, domainField } from "@web/views/fields/domain/domain_field";

// What crm.sop.task.template._sop_check_leaf accepts, offered as such: the
// opportunity's own business fields (the server's list, no path through
// relations), relational fields compared with records, no sub-domains nor
// relative dates.
const EXCLUDED_OPERATORS = ["any", "not any", "within", "child_of", "parent_of"];
const RELATIONAL_OPERATORS = ["in", "not in", "set", "not_set"];

let fieldNamesPromise = null;

/** The names of the fields a condition may read, asked once per page. */
function loadSopFieldNames(orm) {
    if (!fieldNamesPromise) {
        fieldNamesPromise = orm
            .call("crm.sop.task.template", "get_sop_condition_field_names", [])
            .then((names) => new Set(names))
            .catch((error) => {
                fieldNamesPromise = null;
                throw error;
            });
    }
    return fieldNamesPromise;
}

export class SopConditionSelector extends DomainSelector {
    setup() {
        super.setup();
        this.sopFieldNames = new Set();
        onWillStart(async () => {
            // the service itself (not useService's): the promise is shared by
            // the editors of the page and outlives the one that asked first
            this.sopFieldNames = await loadSopFieldNames(this.env.services.orm);
        });
    }

    /** A new condition starts on a field the server accepts (not on "id"). */
    getDefaultCondition(fieldDefs) {
        const names = Object.keys(fieldDefs).filter((name) => this.sopFieldNames.has(name));
        const name = names.includes("expected_revenue") ? "expected_revenue" : names[0];
        return super.getDefaultCondition(name ? { [name]: fieldDefs[name] } : fieldDefs);
    }

    getPathEditorInfo(resModel, defaultCondition) {
        const info = super.getPathEditorInfo(resModel, defaultCondition);
        const extractProps = info.extractProps;
        info.extractProps = (params) => ({
            ...extractProps(params),
            followRelations: false,
            filter: (fieldDef) => this.sopFieldNames.has(fieldDef.name),
        });
        return info;
    }

    sopOperators(fieldDef) {
        const operators = getDomainDisplayedOperators(fieldDef).filter(
            (operator) => !EXCLUDED_OPERATORS.includes(operator)
        );
        if (fieldDef && ["many2one", "many2many"].includes(fieldDef.type)) {
            return operators.filter((operator) => RELATIONAL_OPERATORS.includes(operator));
        }
        return operators;
    }

    getDefaultOperator(fieldDef) {
        return this.sopOperators(fieldDef)[0];
    }

    getOperatorEditorInfo(fieldDef) {
        return getOperatorEditorInfo(this.sopOperators(fieldDef), fieldDef);
    }
}

export class SopConditionField extends DomainField {
    static components = { ...DomainField.components, DomainSelector: SopConditionSelector };
}

registry.category("fields").add("sop_condition", {
    ...domainField,
    component: SopConditionField,
});
