/** @odoo-module **/

import { onWillStart } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { DomainSelector } from "@web/core/domain_selector/domain_selector";
import { getDomainDisplayedOperators } from "@web/core/domain_selector/domain_selector_operator_editor";
import {
    condition,
    removeBetweenOperators,
    removeVirtualOperators,
} from "@web/core/tree_editor/condition_tree";
import { getOperatorEditorInfo } from "@web/core/tree_editor/tree_editor_operator_editor";
import { DomainField, domainField } from "@web/views/fields/domain/domain_field";

// What crm.sop.task.template._sop_check_leaf accepts, offered as such: the
// opportunity's own business fields and the operators the server accepts
// (the server's lists, no path through relations), relational fields
// compared with records, no sub-domains nor relative dates.
let vocabularyPromise = null;

/** The fields a condition may read and its operators, asked once per page. */
function loadSopVocabulary(orm) {
    if (!vocabularyPromise) {
        const model = "crm.sop.task.template";
        vocabularyPromise = Promise.all([
            orm.call(model, "get_sop_condition_field_names", []),
            orm.call(model, "get_sop_condition_operators", []),
        ])
            .then(([names, operators]) => ({ fieldNames: new Set(names), ...operators }))
            .catch((error) => {
                vocabularyPromise = null;
                throw error;
            });
    }
    return vocabularyPromise;
}

/**
 * The domain operators core's editor writes for one of its operators
 * ("set" is "!=" False, "between" is ">=" and "<=", ...); "within" (a
 * relative date, not a literal) and sub-domains stay as they are, which the
 * server does not accept.
 */
function domainOperators(operator) {
    const tree = removeBetweenOperators(removeVirtualOperators(condition("x", operator, [1, 2])));
    return tree.type === "condition" ? [tree.operator] : tree.children.map((c) => c.operator);
}

export class SopConditionSelector extends DomainSelector {
    setup() {
        super.setup();
        this.sopFieldNames = new Set();
        this.sopVocabulary = { operators: [], relational_operators: [] };
        onWillStart(async () => {
            // the service itself (not useService's): the promise is shared by
            // the editors of the page and outlives the one that asked first
            this.sopVocabulary = await loadSopVocabulary(this.env.services.orm);
            this.sopFieldNames = this.sopVocabulary.fieldNames;
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
        const { operators, relational_operators } = this.sopVocabulary;
        const relational = fieldDef && ["many2one", "many2many"].includes(fieldDef.type);
        const accepted = relational ? relational_operators : operators;
        return getDomainDisplayedOperators(fieldDef).filter((operator) =>
            domainOperators(operator).every((op) => accepted.includes(op))
        );
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
