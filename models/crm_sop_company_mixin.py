from collections import defaultdict

from odoo import Command, api, models
from odoo.exceptions import AccessError


class CrmSopCompanyMixin(models.AbstractModel):
    """Configuration whose values stay in the companies of who writes them.

    Record rules are checked on the records before a write, not on the values
    written: without this, a sales manager of company A could move a playbook,
    a SOP stage or a task template into company B (``company_id``, or a
    ``template_id`` / ``stage_id`` of B), or link a shared playbook to B's
    team, and so reach B's opportunities. Two checks close it, as core's
    ``create`` does for the records it creates:

    - every record a relational value points to, of a model that has
      companies, must be readable by the writer (their record rules);
    - the records written must still be writable by the writer afterwards
      (their company did not move out of the writer's companies).

    Company consistency between a record and its relations is core's
    ``_check_company_auto`` with ``check_company=True`` on the fields.
    Superuser code (install, data files, the engine) is not restricted."""

    _name = "crm.sop.company.mixin"
    _description = "Sales SOP configuration kept in its companies"
    _check_company_auto = True

    @api.model_create_multi
    def create(self, vals_list):
        self._sop_check_written_targets(vals_list)
        # core checks the create rules on the new records (their company)
        return super().create(vals_list)

    def write(self, vals):
        self._sop_check_written_targets([vals])
        res = super().write(vals)
        if (
            not self.env.su
            and ({"company_id"} | self._sop_company_paths()) & vals.keys()
        ):
            # the records' company may have moved with the value written
            self.check_access("write")
        return res

    @api.model
    def _sop_company_paths(self):
        """Fields whose value decides the record's company (override: the
        parent a stored related ``company_id`` follows)."""
        return set()

    @api.model
    def _sop_check_written_targets(self, vals_list):
        """Refuse values that point to records of a company the user does not
        work in (they cannot read them)."""
        if self.env.su:
            return
        targets = defaultdict(set)
        for vals in vals_list:
            for fname, value in vals.items():
                field = self._fields.get(fname)
                if (
                    not field
                    or not value
                    or field.type not in ("many2one", "many2many")
                    or "company_id" not in self.env[field.comodel_name]._fields
                ):
                    continue
                targets[field.comodel_name].update(self._sop_command_ids(field, value))
        for model_name, ids in targets.items():
            records = self.env[model_name].browse(ids)
            if not records.has_access("read"):
                raise AccessError(
                    self.env._(
                        "You cannot link %(model)s of a company you do not work "
                        "in (ids %(ids)s).",
                        model=records._description,
                        ids=", ".join(str(i) for i in sorted(ids)),
                    )
                )

    @api.model
    def _sop_command_ids(self, field, value):
        """The ids a many2one value or many2many commands link to."""
        if field.type == "many2one":
            return {value.id if isinstance(value, models.BaseModel) else value}
        ids = set()
        for command in value:
            if isinstance(command, int):
                ids.add(command)
            elif command[0] == Command.LINK:
                ids.add(command[1])
            elif command[0] == Command.SET:
                ids.update(command[2])
        return ids
