from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import html2plaintext


class CrmSopScriptSend(models.Model):
    """One row per script sent to a customer (by email, SMS, or copied for a
    messenger and confirmed sent): the evidence that completes script tasks,
    and what the review of which steps win deals reads. Written by the engine
    only (``_sop_record``); nobody has create or write access."""

    _name = "crm.sop.script.send"
    _description = "Sales SOP Script Sent"
    _order = "date desc, id desc"
    _rec_name = "mail_template_id"

    lead_id = fields.Many2one(
        "crm.lead",
        string="Opportunity",
        required=True,
        index=True,
        ondelete="cascade",
        readonly=True,
    )
    task_id = fields.Many2one(
        "crm.sop.task",
        string="SOP Task",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
    )
    mail_template_id = fields.Many2one(
        "mail.template",
        string="Script",
        required=True,
        index=True,
        ondelete="restrict",
        readonly=True,
    )
    user_id = fields.Many2one(
        "res.users", string="Sent By", required=True, readonly=True
    )
    channel = fields.Selection(
        [("email", "Email"), ("sms", "SMS"), ("copy", "Copied")],
        required=True,
        readonly=True,
        help="Copied: the rep copied the script for a messenger (WeChat...) "
        "and confirmed that it was sent.",
    )
    crm_stage_id = fields.Many2one(
        "crm.stage", string="Pipeline Stage", ondelete="set null", readonly=True
    )
    sop_stage_id = fields.Many2one(
        "crm.sop.stage", string="SOP Stage", ondelete="set null", readonly=True
    )
    date = fields.Datetime(
        required=True, default=fields.Datetime.now, readonly=True, index=True
    )
    company_id = fields.Many2one("res.company", readonly=True, index=True)

    @api.model
    def _sop_record(self, leads, mail_template, channel, task_id=None):
        """The script ``mail_template`` was sent on ``leads`` by the current
        user: one row per lead, and their script tasks with this script are
        done (only ``task_id`` where it was sent from a task)."""
        if not leads:
            return self
        Task = self.env["crm.sop.task"]
        tasks = Task.browse()
        config = self.env["crm.sop.task.template"]._sop_config()
        task_template_ids = [
            c.id
            for c in config.values()
            if c.kind == "script" and c.mail_template_id == mail_template.id
        ]
        if task_template_ids:
            domain = [
                ("lead_id", "in", leads.ids),
                ("task_template_id", "in", task_template_ids),
                ("state", "!=", "na"),
            ]
            if task_id:
                domain.append(("id", "=", task_id))
            # sudo: reps have no access to write tasks; the leads were checked
            # writable by the caller
            tasks = Task.sudo().search_fetch(domain, ["lead_id", "date_script_sent"])
        task_by_lead = {task.lead_id.id: task.id for task in tasks}
        leads = leads.sudo()  # sudo: stages of the leads as they are now
        leads.fetch(["stage_id", "sop_stage_id", "company_id"])
        now = fields.Datetime.now()
        # sudo: the engine is the only writer of sends (no create access)
        sends = self.sudo().create(
            [
                {
                    "lead_id": lead.id,
                    "task_id": task_by_lead.get(lead.id, False),
                    "mail_template_id": mail_template.id,
                    "user_id": self.env.uid,
                    "channel": channel,
                    "crm_stage_id": lead.stage_id.id,
                    "sop_stage_id": lead.sop_stage_id.id,
                    "company_id": lead.company_id.id,
                    "date": now,
                }
                for lead in leads
            ]
        )
        first = tasks.filtered(lambda task: not task.date_script_sent)
        if first:
            first.write({"date_script_sent": now})
            self.env["crm.sop.engine"]._sop_evaluate(first.lead_id)
        return sends

    # ------------------------------------------------------------
    # ONE-CLICK SEND (called by crm.lead and crm.sop.task)
    # ------------------------------------------------------------

    @api.model
    def _sop_channels(self):
        """The channels this database can send a script by."""
        channels = ["email", "copy"]
        if "sms.sms" in self.env:
            channels.insert(1, "sms")
        return channels

    @api.model
    def _sop_scripts(self, lead):
        """The scripts offered on ``lead``: the library's, and those of the
        script tasks of its playbook."""
        # sudo: the scripts of the tasks of a deal the rep may read, whatever
        # the rep may read of the playbook's configuration
        task_scripts = lead.sop_task_ids.sudo().task_template_id.mail_template_id
        library = self.env["mail.template"].search(
            [("sop_is_script", "=", True), ("model", "=", "crm.lead")]
        )
        return (library | task_scripts.sudo(False)).filtered(
            lambda template: template.model == "crm.lead"
        )

    @api.model
    def _sop_menu(self, lead):
        """The Scripts menu of ``lead``'s SOP panel: its scripts, those of its
        SOP stage first, then those of its open tasks; which ones it was
        sent; the channels and languages."""
        scripts = self._sop_scripts(lead)
        stage = lead.sop_stage_id
        open_tasks = {
            task.task_template_id.mail_template_id.id: task.id
            # sudo: the scripts of the deal's own tasks (see _sop_scripts)
            for task in lead.sop_task_ids.sudo()
            if task.kind == "script" and task.state == "todo"
        }
        sent = {
            template.id
            for [template] in self._read_group(
                [("lead_id", "=", lead.id)], ["mail_template_id"]
            )
        }
        rows = [
            {
                "id": script.id,
                "name": script.name,
                "description": script.description or "",
                "current": bool(stage and stage in script.sop_stage_ids),
                "task_id": open_tasks.get(script.id, False),
                "sent": script.id in sent,
            }
            for script in scripts
        ]
        rows.sort(key=lambda row: (not row["current"], not row["task_id"], row["name"]))
        return {
            "scripts": rows,
            "channels": self._sop_channels(),
            "langs": self.env["res.lang"].get_installed(),
            "lang": self._sop_lang(lead),
        }

    @api.model
    def _sop_script(self, lead, template_id):
        """The script ``template_id`` as the current user may use it on
        ``lead``: only on a deal they may write, only a script of it."""
        lead.ensure_one()
        lead.check_access("write")
        template = self.env["mail.template"]
        if isinstance(template_id, int) and not isinstance(template_id, bool):
            template = template.browse(template_id).exists()
        if not template or template not in self._sop_scripts(lead):
            raise UserError(
                self.env._(
                    "This is not a Sales SOP script of “%(lead)s”.",
                    lead=lead.display_name,
                )
            )
        return template

    @api.model
    def _sop_lang(self, lead, lang=None):
        """The language a script is rendered in: the one the rep chose, else
        the customer's, else the deal's, else its salesperson's."""
        installed = dict(self.env["res.lang"].get_installed())
        if lang:
            if lang not in installed:
                raise UserError(
                    self.env._("The language “%(lang)s” is not installed.", lang=lang)
                )
            return lang
        for code in (
            lead.partner_id.lang,
            lead.lang_id.code,
            lead.user_id.lang,
            self.env.user.lang,
        ):
            if code in installed:
                return code
        return self.env.lang or "en_US"

    @api.model
    def _sop_render(self, lead, template, lang):
        """{'subject', 'body' (HTML), 'text' (plain, ready to paste)}."""
        template = template.with_context(lang=lang)
        try:
            subject = template._render_field("subject", lead.ids)[lead.id] or ""
            body = template._render_field("body_html", lead.ids)[lead.id] or ""
        except UserError as error:
            raise UserError(
                self.env._(
                    "The script “%(script)s” could not be prepared for "
                    "“%(lead)s”: %(error)s",
                    script=template.name,
                    lead=lead.display_name,
                    error=error.args[0] if error.args else "",
                )
            ) from error
        return {"subject": subject, "body": body, "text": html2plaintext(body)}

    @api.model
    def _sop_check_recipient(self, lead, channel):
        partner = lead.partner_id
        if channel == "copy":
            return
        if not partner:
            raise UserError(
                self.env._(
                    "Set the customer of “%(lead)s” first: the script is sent "
                    "to the customer.",
                    lead=lead.display_name,
                )
            )
        if channel == "email" and not partner.email:
            raise UserError(
                self.env._(
                    "“%(customer)s” has no email address: add one, or copy the "
                    "script and send it by a messenger.",
                    customer=partner.display_name,
                )
            )
        if channel == "sms":
            if "sms.sms" not in self.env:
                raise UserError(
                    self.env._("Sending a script by SMS needs the SMS module.")
                )
            if not (partner.mobile or partner.phone):
                raise UserError(
                    self.env._(
                        "“%(customer)s” has no mobile number: add one, or copy "
                        "the script and send it by a messenger.",
                        customer=partner.display_name,
                    )
                )

    @api.model
    def _sop_send(self, lead, template_id, channel="email", task=None, lang=None):
        """Send the script on ``lead`` by ``channel`` (``copy``: the rep
        confirms having sent the copied text), record it and complete its
        task. Refused, with nothing sent or recorded, when it cannot
        happen."""
        if channel not in ("email", "sms", "copy"):
            raise UserError(
                self.env._(
                    "Unknown way of sending a script: %(channel)s", channel=channel
                )
            )
        template = self._sop_script(lead, template_id)
        lang = self._sop_lang(lead, lang)
        self._sop_check_recipient(lead, channel)
        rendered = self._sop_render(lead, template, lang)
        if channel == "email":
            lead.with_context(lang=lang).message_post(
                body=rendered["body"],
                subject=rendered["subject"],
                partner_ids=lead.partner_id.ids,
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
                email_layout_xmlid="mail.mail_notification_light",
                attachment_ids=template.attachment_ids.ids,
            )
        elif channel == "sms":
            lead._message_sms(rendered["text"], partner_ids=lead.partner_id.ids)
        return self._sop_record(
            lead, template, channel, task_id=task.id if task else None
        )
