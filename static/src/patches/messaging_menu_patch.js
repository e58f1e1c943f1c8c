/** @odoo-module **/

import { MessagingMenu } from "@mail/core/public_web/messaging_menu";
import { patch } from "@web/core/utils/patch";

/**
 * The Sales SOP digest is a notification to the rep on their own contact (a
 * message about no document needs a thread for the messaging menu to list
 * it). Core keeps notifications out of a record's conversation (they live in
 * the Inbox), so opening that thread would show an empty conversation: the
 * rep's own contact opens the Inbox instead, where the digest shows with its
 * subject and links.
 */
patch(MessagingMenu.prototype, {
    openDiscussion(thread) {
        const me = this.store.self;
        if (thread.model !== "res.partner" || me?.type !== "partner" || thread.id !== me.id) {
            return super.openDiscussion(...arguments);
        }
        this.dropdown.close();
        if (this.env.inDiscussApp) {
            this.store.inbox.setAsDiscussThread();
            return;
        }
        this.env.services.action.doAction(
            { type: "ir.actions.client", tag: "mail.action_discuss" },
            { additionalContext: { active_id: "mail.box_inbox" } }
        );
    },
});
