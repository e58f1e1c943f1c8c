/** @odoo-module **/

import { registry } from "@web/core/registry";
import { DomainSelector } from "@web/core/domain_selector/domain_selector";
import { getDomainDisplayedOperators } from "@web/core/domain_selector/domain_selector_operator_editor";
import { getOperatorEditorInfo } from "@web/core/tree_editor/tree_editor_operator_editor";
import { DomainField, domainField } from "@web/views/fields/domain/domain_field";

// What crm.sop.task.template._sop_check_leaf accepts, offered as such: the
// opportunity's own stored fields (no path through relations), relational
// fields compared with records, no sub-domains nor relative dates.
const EXCLUDED_TYPES = ["one2many", "properties", "properties_definition", "json"];
const EXCLUDED_OPERATORS = ["any", "not any", "within", "child_of", "parent_of"];
const RELATIONAL_OPERATORS = ["in", "not in", "set", "not_set"];

export class SopConditionSelector extends DomainSelector {
    getPathEditorInfo(resModel, defaultCondition) {
        const info = super.getPathEditorInfo(resModel, defaultCondition);
        const extractProps = info.extractProps;
        info.extractProps = (params) => ({
            ...extractProps(params),
            followRelations: false,
            filter: (fieldDef) =>
                fieldDef.searchable &&
                fieldDef.store !== false &&
                !EXCLUDED_TYPES.includes(fieldDef.type),
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
