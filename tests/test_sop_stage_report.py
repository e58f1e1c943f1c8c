from datetime import datetime

from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import TestSopCommon


@tagged("post_install", "-at_install", "crm_sales_sop")
class TestSopStageReport(TestSopCommon):
    """The SOP stage analysis on a known history, computed by hand.

    A: Contact Mon 2 → Wed 4 Nov (2 weekdays), then Pitch Wed 4 → won Mon 9
       (Thu, Fri, Mon: 3).
    B: Contact Fri 6 → lost Tue 10 (Mon, Tue: 2).
    """

    def _dates(self, lead, stage, start, end=None):
        self.env.cr.execute(
            "UPDATE crm_sop_stage_log SET date_start = %s, date_end = %s "
            "WHERE lead_id = %s AND sop_stage_id = %s",
            (start, end, lead.id, stage.id),
        )

    def test_stage_figures(self):
        lead_a, lead_b = self.env["crm.lead"].create(
            [
                self._sop_lead_vals(name="A", partner_id=self.customer.id),
                self._sop_lead_vals(name="B"),
            ]
        )
        # A finishes Contact and moves on in the pipeline: the SOP follows
        self.customer.write({"x_sop_gender": "male", "x_sop_age_range": "25_34"})
        lead_a.write({"x_sop_companions": "A", "x_sop_decision_makers": "B"})
        self.env["crm.sop.script.send"]._sop_record(lead_a, self.mail_template, "copy")
        self.assertEqual(lead_a.sop_stage_id, self.sop_stage_contact)
        lead_a.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(lead_a.sop_stage_id, self.sop_stage_pitch)
        lead_a.write({"stage_id": self.stage_team1_won.id})
        lead_b.action_set_lost()
        self.env.flush_all()
        self._dates(
            lead_a,
            self.sop_stage_contact,
            datetime(2026, 11, 2, 9),
            datetime(2026, 11, 4, 9),
        )
        self._dates(lead_a, self.sop_stage_pitch, datetime(2026, 11, 4, 9))
        self._dates(lead_b, self.sop_stage_contact, datetime(2026, 11, 6, 9))
        self.env.cr.execute(
            "UPDATE crm_lead SET date_closed = %s WHERE id = %s",
            (datetime(2026, 11, 9, 9), lead_a.id),
        )
        self.env.cr.execute(
            "UPDATE crm_lead SET date_closed = %s WHERE id = %s",
            (datetime(2026, 11, 10, 9), lead_b.id),
        )
        self.env.invalidate_all()
        Report = self.env["crm.sop.stage.report"].with_user(self.user_sales_manager)
        groups = Report._read_group(
            [("lead_id", "in", (lead_a | lead_b).ids)],
            ["sop_stage_id"],
            [
                "entered_count:sum",
                "advanced_count:sum",
                "won_count:sum",
                "lost_count:sum",
                "advance_rate:avg",
                "won_rate:avg",
                "stage_days:avg",
            ],
        )
        figures = {stage: tuple(values) for stage, *values in groups}
        self.assertEqual(figures[self.sop_stage_contact], (2, 1, 1, 1, 50.0, 50.0, 2.0))
        self.assertEqual(figures[self.sop_stage_pitch], (1, 0, 1, 0, 0.0, 100.0, 3.0))

    def test_access(self):
        self.env["crm.lead"].create(self._sop_lead_vals())
        with self.assertRaises(AccessError):
            self.env["crm.sop.stage.report"].with_user(self.user_sales_salesman).search(
                []
            )
        other = self.env["res.company"].create({"name": "Other branch"})
        manager = self.user_sales_manager
        manager.write({"company_ids": [(4, other.id)], "company_id": other.id})
        rows = (
            self.env["crm.sop.stage.report"]
            .with_user(manager)
            .with_context(allowed_company_ids=other.ids)
            .search([])
        )
        self.assertFalse(rows.company_id - other)
        self.assertFalse(rows.filtered(lambda r: r.company_id == self.env.company))
