// SPDX-License-Identifier: Apache-2.0
/* qwd-form.js: the form shows the choices of the selected machine only (video card, scratch
 * disk, GPU, folders: each machine's fieldset, data-machine); the others are hidden and
 * disabled, so they are not sent. Without this script every machine's fieldset is shown and
 * the server reads the chosen machine's. No dependencies, no inline code. */
(function () {
    "use strict";
    var select = document.querySelector("form.qwd-form select[name=machine]");
    if (!select) {
        return;
    }
    function show() {
        var sets = document.querySelectorAll("fieldset[data-machine]");
        for (var i = 0; i < sets.length; i++) {
            var mine = sets[i].getAttribute("data-machine") === select.value;
            sets[i].hidden = !mine;
            sets[i].disabled = !mine;
        }
    }
    select.addEventListener("change", show);
    show();
})();
