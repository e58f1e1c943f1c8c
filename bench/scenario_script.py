"""Scenario ``script``: one script sent in one click from the SOP panel
(email: posted and mailed to the customer; copy: recorded when the rep
confirms), against core's way of sending the same template on the same
opportunity (``message_post_with_source``, as the composer does)."""

from fixture import Fixture, set_mode
from harness import alternate, compare, log, measure, rolled_back, transaction

NAME = "script"
WELCOME = "crm_sales_sop.mail_template_sop_welcome"


def add_arguments(parser):
    pass


def run(registry, args):
    """Each round sends on a fresh opportunity (rolled back after): core's
    template post vs the one-click email, and the one-click copy."""
    results = {}
    with transaction(registry) as env:
        fixture = Fixture(env, partners=10)
        set_mode(env, "sop")
        script = env.ref(WELCOME)
        # core's side sends a copy of the template that is no script: the
        # addon records and completes nothing for it
        core_template = script.copy({"name": "Bench welcome (not a script)"})
        rounds = args.repeat * args.fast_factor + 1
        leads = fixture.env["crm.lead"].create(fixture.lead_vals(rounds))
        env.cr.flush()
        Lead = fixture.env["crm.lead"]
        sends = {
            "core": lambda lead: lead.message_post_with_source(
                core_template, subtype_xmlid="mail.mt_comment"
            ),
            "sop": lambda lead: lead.action_sop_send_script(script.id),
        }
        samples = {"core": [], "sop": []}
        copies = []
        for index, order in enumerate(alternate(rounds)):
            lead = Lead.browse(leads[index].id)
            for mode in order:
                with rolled_back(env):
                    samples[mode].append(
                        measure(env, lambda m=mode, lead=lead: sends[m](lead))
                    )
            with rolled_back(env):
                copies.append(
                    measure(
                        env,
                        lambda lead=lead: lead.action_sop_send_script(
                            script.id, channel="copy"
                        ),
                    )
                )
                done = env["crm.sop.task"].search_count(
                    [("lead_id", "=", lead.id), ("state", "=", "done")]
                )
        # the first round warms the ormcaches up and is left out
        samples = {mode: values[1:] for mode, values in samples.items()}
        results["email"] = compare(samples)
        results["copy"] = compare({"core": samples["core"], "sop": copies[1:]})
        results["tasks_done_after_copy"] = done
        log(
            f"  email: core {results['email']['core']['queries']} q, "
            f"SOP {results['email']['sop']['queries']} q; "
            f"copy {results['copy']['sop']['queries']} q"
        )
    return results


def report_rows(results):
    """(scenario, core, SOP, ratio / extra, target / note) rows."""
    email, copy = results["email"], results["copy"]
    return [
        (
            "script email (queries)",
            f"{email['core']['queries']:g}",
            f"{email['sop']['queries']:g}",
            f"{email['extra_queries']:+g}",
            "core: message_post_with_source",
        ),
        (
            "script email (ms)",
            f"{1000 * email['core']['seconds']:.1f}",
            f"{1000 * email['sop']['seconds']:.1f}",
            f"{email['time_ratio']:.2f}x",
            "",
        ),
        (
            "script copy (queries)",
            "",
            f"{copy['sop']['queries']:g}",
            "",
            "records and completes, sends nothing",
        ),
    ]
