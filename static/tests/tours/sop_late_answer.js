/** @odoo-module **/

/**
 * Clicked fast, answered out of order: the answer of the next request whose
 * JSON-RPC body contains every string of `match` is held `delay` ms, so that
 * the requests sent after it are answered first. Once the held answer is in
 * (and had time to render), the body gets the class o_sop_late_answer_in.
 * The patch of XMLHttpRequest goes away with the held request.
 */
export function holdAnswer(match, delay = 1000) {
    document.body.classList.remove("o_sop_late_answer_in");
    const proto = XMLHttpRequest.prototype;
    const { addEventListener, send } = proto;
    proto.addEventListener = function (type, listener, ...rest) {
        if (type !== "load") {
            return addEventListener.call(this, type, listener, ...rest);
        }
        const request = this;
        const held = (ev) => {
            if (!request.sopHeld) {
                return listener.call(request, ev);
            }
            setTimeout(() => {
                listener.call(request, ev);
                setTimeout(() => document.body.classList.add("o_sop_late_answer_in"), 300);
            }, delay);
        };
        return addEventListener.call(this, type, held, ...rest);
    };
    proto.send = function (body) {
        if (typeof body === "string" && match.every((text) => body.includes(text))) {
            this.sopHeld = true;
            proto.addEventListener = addEventListener;
            proto.send = send;
        }
        return send.call(this, body);
    };
}
