import re
import unicodedata
from collections import defaultdict
from datetime import timedelta

from lxml import html as lxml_html
from markupsafe import Markup
from psycopg2.errors import LockNotAvailable

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from .crm_sop_script_fact import SOP_SCRIPT_FACT_SEND_FIELDS

# mail.notification status -> delivery of the send (SMS "pending" is handed
# to the provider, which mail labels "Sent")
NOTIFICATION_DELIVERY = {
    "ready": "outgoing",
    "process": "outgoing",
    "pending": "sent",
    "sent": "sent",
    "bounce": "failed",
    "exception": "failed",
    "canceled": "failed",
}
MAIL_DELIVERY = {
    "outgoing": "outgoing",
    "sent": "sent",
    "received": "sent",
    "exception": "failed",
    "cancel": "failed",
}

# a one-tap email waits this long in the outgoing queue, where its rep may
# take it back (Undo); ir.config_parameter crm_sales_sop.script_undo_seconds
SOP_UNDO_SECONDS = 10


# what a reader sees as paragraphs and lines of a script's HTML
PARAGRAPH_TAGS = {
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "pre",
}
LINE_TAGS = {"li", "tr"}
PARAGRAPH, LINE, BREAK = "\x02", "\x01", "\x03"


def _sop_wide(char):
    """A character of a script written without spaces (Chinese, Japanese,
    full-width punctuation)."""
    return unicodedata.east_asian_width(char) in ("W", "F")


def sop_plain_text(body):
    """The text of a script's HTML as a reader sees it, ready to paste in a
    messenger or send by SMS: paragraphs separated by a blank line, ``<br>``
    and list items on their own line, and the line wraps of the template's
    source joined (with a space between words, with nothing between Chinese
    characters). A link keeps its address after its text. Unlike core's
    ``html2plaintext``, which keeps the source's line wraps as hard breaks,
    drops the blank lines between paragraphs and numbers links as notes."""
    if not body or not body.strip():
        return ""
    root = lxml_html.fragment_fromstring(body, create_parent="div")
    parts = []

    def walk(node):
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag in ("script", "style"):
            return
        boundary = (
            PARAGRAPH if tag in PARAGRAPH_TAGS else (LINE if tag in LINE_TAGS else "")
        )
        parts.append(boundary)
        if tag == "li":
            parts.append("- ")
        if node.text:
            parts.append(node.text)
        for child in node:
            walk(child)
        href = node.get("href") if tag == "a" else None
        if href and href.startswith(("http://", "https://")):
            if href not in (node.text_content() or ""):
                parts.append(f" ({href})")
        if tag == "br":
            parts.append(BREAK)
        elif boundary:
            parts.append(boundary)
        if node.tail:
            parts.append(node.tail)

    walk(root)
    text = "".join(parts)

    def space(match):
        run, start, end = match.group(0), match.start(), match.end()
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if "\n" in run and _sop_wide(before) and _sop_wide(after):
            return ""  # a line wrap of the source inside Chinese text
        return " "

    text = re.sub(r"[ \t\r\n\f\v\u00a0]+", space, text)
    # boundaries: spaces around them go, a paragraph wins over a line
    text = re.sub(rf" *([{LINE}{PARAGRAPH}{BREAK}]) *", r"\1", text)
    text = re.sub(
        rf"[{LINE}{PARAGRAPH}{BREAK}]*{PARAGRAPH}[{LINE}{PARAGRAPH}{BREAK}]*",
        "\n\n",
        text,
    )
    text = re.sub(f"{LINE}+", "\n", text).replace(BREAK, "\n")
    return text.strip()


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
    partner_id = fields.Many2one(
        "res.partner", string="Customer", ondelete="set null", readonly=True
    )
    delivery_state = fields.Selection(
        [("outgoing", "Outgoing"), ("sent", "Sent"), ("failed", "Not Delivered")],
        string="Delivery",
        required=True,
        default="sent",
        readonly=True,
        index=True,
        help="As Odoo's mail records it for the customer: Outgoing (queued), "
        "Sent, or Not Delivered (refused by the mail server, bounced, failed "
        "SMS, or cancelled). A copied script is sent once the rep confirms it.",
    )
    failure_reason = fields.Char(string="Failure", readonly=True)
    mail_message_id = fields.Many2one(
        "mail.message",
        string="Message",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
    )
    mail_mail_id = fields.Many2one(
        "mail.mail",
        string="Outgoing Email",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
        help="The email of a mass mailing, which carries no notification.",
    )

    # ------------------------------------------------------------
    # CRUD: the script analysis' facts follow the sends
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        sends = super().create(vals_list)
        self.env["crm.sop.task.fact"]._sop_mark(sends.lead_id.ids)
        return sends

    def write(self, vals):
        facts = not vals.keys().isdisjoint(SOP_SCRIPT_FACT_SEND_FIELDS)
        if facts:
            # the deal a send leaves (a merge), and the one it joins
            self.env["crm.sop.task.fact"]._sop_mark(self.lead_id.ids)
        res = super().write(vals)
        if facts:
            self.env["crm.sop.task.fact"]._sop_mark(self.lead_id.ids)
        return res

    def unlink(self):
        self.env["crm.sop.task.fact"]._sop_mark(self.lead_id.ids)
        return super().unlink()

    @api.model
    def _sop_record(self, leads, mail_template, channel, task_id=None, carriers=None):
        """The script ``mail_template`` was sent on ``leads`` by the current
        user: one row per lead, and their script tasks with this script are
        done (only ``task_id`` where it was sent from a task) unless mail
        already knows it failed. ``carriers``: {lead id: (mail.message id,
        mail.mail id, delivery already known or None)} that carry it to the
        customer."""
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
        carriers = {
            lead.id: (carriers or {}).get(lead.id) or (False, False, None)
            for lead in leads
        }
        # sudo: the engine is the only writer of sends (no create access)
        sends = self.sudo().create(
            [
                {
                    "partner_id": lead.partner_id.id,
                    "delivery_state": "sent"
                    if channel == "copy"
                    else carriers[lead.id][2] or "outgoing",
                    "mail_message_id": carriers[lead.id][0],
                    "mail_mail_id": carriers[lead.id][1],
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
        known_failed = sends.filtered(lambda send: send.delivery_state == "failed")
        sends.filtered(lambda send: send.channel != "copy")._sop_delivery_sync(
            resync_tasks=False
        )
        known_failed._sop_tell_failed()
        delivered = {
            send.lead_id.id for send in sends if send.delivery_state != "failed"
        }
        first = tasks.filtered(
            lambda task: not task.date_script_sent and task.lead_id.id in delivered
        )
        if first:
            first.write({"date_script_sent": now})
            self.env["crm.sop.engine"]._sop_evaluate(first.lead_id)
        return sends

    # ------------------------------------------------------------
    # DELIVERY (as mail records it)
    # ------------------------------------------------------------

    def _sop_delivery_sync(self, resync_tasks=True):
        """Read the delivery of these sends from what mail recorded (the
        customer's notifications on the message, else the mass mailing's
        mail), in one pass. Sends that fail tell their rep; the script tasks
        of sends crossing the failed line follow (``resync_tasks``)."""
        sends = self.sudo().filtered(lambda send: send.channel != "copy")
        if not sends:
            return
        notifications = (
            self.env["mail.notification"]
            .sudo()
            .search_fetch(
                [
                    ("mail_message_id", "in", sends.mail_message_id.ids),
                    ("res_partner_id", "in", sends.partner_id.ids),
                ],
                [
                    "mail_message_id",
                    "res_partner_id",
                    "notification_status",
                    "failure_type",
                    "failure_reason",
                ],
            )
        )
        by_recipient = defaultdict(list)
        for notification in notifications:
            by_recipient[
                notification.mail_message_id.id, notification.res_partner_id.id
            ].append(notification)
        updates = defaultdict(lambda: self.sudo().browse())
        for send in sends:
            found = by_recipient.get((send.mail_message_id.id, send.partner_id.id))
            reason = False
            if found:
                states = {NOTIFICATION_DELIVERY[n.notification_status] for n in found}
                state = next(s for s in ("sent", "outgoing", "failed") if s in states)
                if state == "failed":
                    failed = found[0]
                    reason = failed.failure_reason or dict(
                        failed._fields["failure_type"]._description_selection(self.env)
                    ).get(failed.failure_type, "")
            elif send.mail_mail_id:
                mail = send.mail_mail_id
                state = MAIL_DELIVERY.get(mail.state, "outgoing")
                if state == "failed":
                    reason = mail.failure_reason or dict(
                        mail._fields["failure_type"]._description_selection(self.env)
                    ).get(mail.failure_type, "")
            else:
                continue  # nothing carries it (yet): as recorded
            reason = reason or False
            if (state, reason) != (send.delivery_state, send.failure_reason):
                updates[state, reason] |= send
        if not updates:
            return
        crossed = self.sudo().browse()
        for (state, reason), group in updates.items():
            crossed |= group.filtered(
                lambda send, state=state: (
                    (send.delivery_state == "failed") != (state == "failed")
                )
            )
            group.write({"delivery_state": state, "failure_reason": reason})
        if resync_tasks:
            crossed._sop_resync_tasks()
        failed = crossed.filtered(lambda send: send.delivery_state == "failed")
        failed._sop_tell_failed()

    @api.model
    def _sop_delivery_later(self, message_ids):
        """Mail changed the delivery of ``message_ids`` (a notification
        written as sent, refused, bounced, cancelled, resent): their sends
        follow once, when the transaction commits, for every message mail
        updated in it (mail writes notifications one mail at a time)."""
        data = self.env.cr.precommit.data
        pending = data.get("crm_sop.script_send.messages")
        if pending is None:
            pending = data["crm_sop.script_send.messages"] = set()
            env = self.env

            @env.cr.precommit.add
            def _sop_follow_delivery():
                message_ids = data.pop("crm_sop.script_send.messages", set())
                # sudo: the engine follows what mail recorded, whoever sent
                # the mail queue
                env["crm.sop.script.send"].sudo().search(
                    [("mail_message_id", "in", list(message_ids))]
                )._sop_delivery_sync()
                # precommit hooks run after the flush of the transaction
                env.flush_all()

        pending.update(message_ids)

    def _sop_resync_tasks(self):
        """The script tasks of these sends count as sent from the first send
        that is not failed (see _sop_resync_task_dates)."""
        # sudo: reps have no write access on tasks; the engine derives them
        self._sop_resync_task_dates(self.sudo().task_id)

    @api.model
    def _sop_resync_task_dates(self, tasks):
        """Script ``tasks`` count as sent from the first send that is not
        failed (theirs, or one of their deal and script recorded without a
        task, such as sends merged from another deal); none left: open again.
        One read, one write per date, one evaluation."""
        Task = self.env["crm.sop.task"]
        tasks = tasks.sudo()
        if not tasks:
            return
        tasks.fetch(["lead_id", "task_template_id", "date_script_sent"])
        first = {}
        for task, lead, template, date in self.sudo()._read_group(
            [
                ("lead_id", "in", tasks.lead_id.ids),
                ("delivery_state", "!=", "failed"),
                "|",
                ("task_id", "in", tasks.ids),
                ("task_id", "=", False),
            ],
            ["task_id", "lead_id", "mail_template_id"],
            ["date:min"],
        ):
            first[task.id or (lead.id, template.id)] = date
        by_date = defaultdict(lambda: Task.sudo())
        for task in tasks:
            # sudo: the script of the task, whatever the rep reads of it
            script = task.task_template_id.mail_template_id
            dates = [
                date
                for date in (
                    first.get(task.id),
                    first.get((task.lead_id.id, script.id)),
                )
                if date
            ]
            date = min(dates) if dates else False
            if date != task.date_script_sent:
                by_date[date] |= task
        for date, group in by_date.items():
            group.write({"date_script_sent": date})
        if by_date:
            self.env["crm.sop.engine"]._sop_evaluate(tasks.lead_id)

    def _sop_tell_failed(self):
        """The rep who sent a script that did not reach the customer is told:
        a note on the deal names the script and the failure, and the rep gets
        a notification (core already flags the failed message in the author's
        messaging menu)."""
        if not self:
            return
        bodies = {}
        for send in self:
            send_env = self.with_context(lang=send.user_id.lang or self.env.lang).env
            channel = dict(send._fields["channel"]._description_selection(send_env))[
                send.channel
            ]
            text = send_env._(
                "The script “%(script)s” did not reach %(customer)s (%(channel)s): "
                "%(reason)s. It does not count as sent: send it again or reach "
                "the customer another way.",
                script=send.mail_template_id.name,
                customer=send.partner_id.display_name or "",
                channel=channel,
                reason=send.failure_reason or send_env._("not delivered"),
            )
            bodies.setdefault(send.lead_id.id, []).append(text)
            send.user_id._bus_send(
                "simple_notification",
                {
                    "type": "warning",
                    "sticky": True,
                    "title": send_env._("Script not delivered"),
                    "message": text,
                },
            )
        leads = self.lead_id.sudo()
        # sudo: a note of the engine, posted where the send was made (batched,
        # no notification), whoever processed the mail queue
        leads._message_log_batch(
            {lead_id: Markup("<br/>").join(texts) for lead_id, texts in bodies.items()},
            author_id=self.env.ref("base.partner_root").id,
        )

    # ------------------------------------------------------------
    # ONE-CLICK SEND, COPY, EDIT FIRST (called by crm.lead and crm.sop.task,
    # neither calling the other)
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
                [("lead_id", "=", lead.id), ("delivery_state", "!=", "failed")],
                ["mail_template_id"],
            )
        }
        langs = self.env["res.lang"].get_installed()
        # the names and descriptions in each language the rep may switch to:
        # the menu follows its language switch (one read per language)
        texts = {
            code: {
                script.id: (script.name, script.description or "")
                for script in scripts.with_context(lang=code)
            }
            for code, _name in langs
        }
        rows = [
            {
                "id": script.id,
                "name": script.name,
                "description": script.description or "",
                "names": {code: texts[code][script.id][0] for code in texts},
                "descriptions": {code: texts[code][script.id][1] for code in texts},
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
            "langs": langs,
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
        self._sop_check_customer(lead)
        return template

    @api.model
    def _sop_check_customer(self, lead):
        """A script is written to the deal's customer: without one it is
        neither rendered, copied, edited nor sent."""
        if not lead.partner_id:
            raise UserError(
                self.env._(
                    "Set the customer of “%(lead)s” first: the script is sent "
                    "to the customer.",
                    lead=lead.display_name,
                )
            )

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
        # scripts render what the playbooks collect: read together
        lead._sop_fetch_collected()
        lead.partner_id._sop_fetch_collected()
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
        return {"subject": subject, "body": body, "text": sop_plain_text(body)}

    @api.model
    def _sop_text(self, lead, template_id, lang=None):
        """{'subject', 'body'}: the script rendered for ``lead``, the body as
        plain text ready to paste in a messenger."""
        template = self._sop_script(lead, template_id)
        rendered = self._sop_render(lead, template, self._sop_lang(lead, lang))
        return {"subject": rendered["subject"], "body": rendered["text"]}

    @api.model
    def _sop_copy_action(self, lead, template_id, lang=None, record=None):
        """Copy the rendered script to the clipboard; the rep then confirms
        that it was sent (crm_sales_sop.copy_script client action) on
        ``record``: the deal, or the task the script is of."""
        record = record or lead
        return {
            "type": "ir.actions.client",
            "tag": "crm_sales_sop.copy_script",
            "params": {
                **self._sop_text(lead, template_id, lang=lang),
                "model": record._name,
                "res_id": record.id,
                "template_id": template_id,
                "lang": lang or False,
            },
        }

    @api.model
    def _sop_composer_action(self, lead, template, task=None, lang=None):
        """ "Edit first": the usual composer with the script, in the language
        the rep chose (``lang``, else as a one-click send picks it); sending
        from it counts too (for ``task`` when given)."""
        context = {
            # the composer renders the script in this language (mail's
            # preview key, read by mail.render.mixin._classify_per_lang)
            "template_preview_lang": self._sop_lang(lead, lang),
            "default_model": "crm.lead",
            "default_res_ids": lead.ids,
            "default_template_id": template.id,
            "default_composition_mode": "comment",
            "default_email_layout_xmlid": "mail.mail_notification_light",
        }
        if task:
            context["sop_task_id"] = task.id
        return {
            "type": "ir.actions.act_window",
            "name": template.name,
            "res_model": "mail.compose.message",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": context,
        }

    @api.model
    def _sop_check_recipient(self, lead, channel):
        self._sop_check_customer(lead)
        partner = lead.partner_id
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
        message = self.env["mail.message"]
        if channel == "email":
            message = lead.with_context(lang=lang).message_post(
                body=rendered["body"],
                subject=rendered["subject"],
                partner_ids=lead.partner_id.ids,
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
                email_layout_xmlid="mail.mail_notification_light",
                attachment_ids=template.attachment_ids.ids,
                # queued, held for the Undo (see _sop_hold_for_undo)
                force_send=False,
            )
            self._sop_hold_for_undo(message)
        elif channel == "sms":
            message = lead._message_sms(
                rendered["text"], partner_ids=lead.partner_id.ids
            )
        return self._sop_record(
            lead,
            template,
            channel,
            task_id=task.id if task else None,
            carriers={lead.id: (message.id, False, None)},
        )

    # ------------------------------------------------------------
    # UNDO (a one-tap email waits in the outgoing queue a few seconds)
    # ------------------------------------------------------------

    @api.model
    def _sop_undo_seconds(self):
        # sudo: a setting of the database, read for whoever sends
        value = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("crm_sales_sop.script_undo_seconds", SOP_UNDO_SECONDS)
        )
        try:
            return max(int(value), 0)
        except (TypeError, ValueError):
            return SOP_UNDO_SECONDS

    @api.model
    def _sop_hold_for_undo(self, message):
        """The emails of ``message`` wait in the outgoing queue for the Undo
        window (as a scheduled email does), then the mail queue sends them:
        it is woken at that time."""
        seconds = self._sop_undo_seconds()
        # sudo: the outgoing emails of the message the rep just posted
        mails = (
            self.env["mail.mail"]
            .sudo()
            .search([("mail_message_id", "=", message.id), ("state", "=", "outgoing")])
        )
        if not mails:
            return
        at = fields.Datetime.now() + timedelta(seconds=seconds)
        mails.write({"scheduled_date": at})
        # sudo: waking the mail queue is the system's (as mail does)
        queue = self.env.ref(
            "mail.ir_cron_mail_scheduler_action", raise_if_not_found=False
        )
        if queue:
            queue.sudo()._trigger(at)

    def _sop_queued_mails(self):
        """The outgoing emails still carrying this send (not left yet)."""
        self.ensure_one()
        if self.channel != "email" or not self.mail_message_id:
            return self.env["mail.mail"]
        # sudo: the queue of the message of the rep's send
        return (
            self.env["mail.mail"]
            .sudo()
            .search(
                [
                    ("mail_message_id", "=", self.mail_message_id.id),
                    ("state", "=", "outgoing"),
                ]
            )
        )

    def _sop_sent_notice(self, lang=None):
        """What the rep is told once a script is sent in one tap: which
        script, to whom, and whether (for how long) Undo can take it back
        (crm_sales_sop.script_sent client action)."""
        self.ensure_one()
        send = self.sudo()  # sudo: the rep's own send, just recorded
        partner = send.partner_id
        address = {"email": partner.email, "sms": partner.mobile or partner.phone}.get(
            send.channel
        )
        recipient = f"{partner.name} <{address}>" if address else partner.name or ""
        undo_seconds = self._sop_undo_seconds() if send._sop_queued_mails() else 0
        if send.delivery_state == "failed":
            title = self.env._("Not sent")
        else:
            title = self.env._("Sent")
        return {
            "type": "ir.actions.client",
            "tag": "crm_sales_sop.script_sent",
            "params": {
                "send_id": send.id,
                "title": title,
                "message": self.env._(
                    "“%(script)s” to %(recipient)s",
                    script=send.mail_template_id.with_context(
                        lang=lang or self.env.lang
                    ).name,
                    recipient=recipient,
                ),
                "type": "danger" if send.delivery_state == "failed" else "success",
                "undo_seconds": undo_seconds,
            },
        }

    def action_sop_undo(self):
        """Take back a one-tap email while it waits in the outgoing queue:
        the email and its message are deleted, the send is not counted, and
        its task is open again. Only the rep who sent it may; once the email
        has left, it is too late (refused, nothing changes)."""
        self.ensure_one()
        self.check_access("read")
        if self.user_id != self.env.user:
            raise AccessError(
                self.env._("Only the salesperson who sent a script can undo it.")
            )
        send = self.sudo()  # sudo: the engine is the only writer of sends
        script = send.mail_template_id.name
        mails = send._sop_queued_mails()
        too_late = UserError(
            self.env._(
                "Too late to undo: “%(script)s” has already left for %(customer)s.",
                script=script,
                customer=send.partner_id.display_name or "",
            )
        )
        if send.channel != "email" or not mails:
            raise too_late
        # the mail queue writes a mail before it hands it to the mail server:
        # a mail it holds is leaving, too late to take back
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    SQL(
                        "SELECT id FROM mail_mail WHERE id IN %s AND state = 'outgoing' "
                        "FOR UPDATE NOWAIT",
                        tuple(mails.ids),
                    ),
                    log_exceptions=False,  # a lock refused is an answer
                )
                locked = {row[0] for row in self.env.cr.fetchall()}
        except LockNotAvailable:
            raise too_late from None
        if locked != set(mails.ids):
            raise too_late
        tasks = send.task_id
        # the tasks this send made sent (their completion is its)
        made = tasks.filtered(lambda task: task.date_script_sent == send.date)
        message = send.mail_message_id
        send.unlink()
        # the message never reached anyone: it goes with its email
        # (mail_mail and its notifications cascade)
        message.unlink()
        self._sop_resync_task_dates(tasks)
        # a completion this send made is not one: no credit, no "done on"
        made.filtered(lambda task: not task.date_script_sent).write(
            {"date_done": False, "done_user_id": False}
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "message": self.env._("“%(script)s” was not sent.", script=script),
            },
        }
