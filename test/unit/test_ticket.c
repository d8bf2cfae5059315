/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of websocket tickets (mod_qwd/qwd_ticket.c): minted tickets check, and forged,
 * expired and malformed ones are refused with the reason the gate logs. */
#include "unit.h"
#include "stub.h"
#include "qwd_secret.h"
#include "qwd_ticket.h"

#include <apr_strings.h>

#define SESSION "0123456789abcdef0123456789abcdef"
#define NONCE "0011223344556677"

/* A ticket as qwd_ticket_mint makes them, for any expiry. */
static const char *signed_ticket(qwd_req_t *q, const char *session, apr_int64_t expiry)
{
    const char *fields =
        apr_psprintf(q->r->pool, "%s|%" APR_INT64_T_FMT "|%s", session, expiry, NONCE);
    return apr_psprintf(q->r->pool, "%s.%" APR_INT64_T_FMT ".%s.%s", session, expiry, NONCE,
                        qwd_secret_sign(q, apr_pstrcat(q->r->pool, "ws|", fields, NULL)));
}

UNIT_TEST(ticket_minted_checks_until_it_expires)
{
    stub_fixture f;
    stub_fixture_open(&f);
    apr_int64_t now = apr_time_sec(apr_time_now());
    qwd_ticket_t checked = {NULL, 0};
    const char *why, *ticket = qwd_ticket_mint(f.q, SESSION),
                     *again = qwd_ticket_mint(f.q, SESSION);
    CHECK(ticket && again && strcmp(ticket, again) != 0); /* each has its own nonce */
    CHECK_STR(qwd_ticket_check(f.q, ticket, &checked, &why), SESSION);
    CHECK(why == NULL);
    CHECK(checked.expiry >= now + QWD_TICKET_LIFETIME
          && checked.expiry <= now + QWD_TICKET_LIFETIME + 1);
    CHECK(checked.nonce && strlen(checked.nonce) == 16);
    CHECK_INT(strlen(strrchr(ticket, '.') + 1), QWD_MAC_HEX_LEN);
    CHECK_STR(qwd_ticket_check(f.q, signed_ticket(f.q, SESSION, now + 5), &checked, &why), SESSION);
    CHECK(qwd_ticket_check(f.q, signed_ticket(f.q, SESSION, now - 1), &checked, &why) == NULL);
    CHECK_STR(why, "expired ticket");
    apr_pool_destroy(f.pool);
}

UNIT_TEST(ticket_forged_or_malformed_is_refused)
{
    stub_fixture f;
    stub_fixture_open(&f);
    apr_int64_t later = apr_time_sec(apr_time_now()) + 30;
    qwd_ticket_t checked;
    const char *why, *good = signed_ticket(f.q, SESSION, later);
    char *other_session = apr_pstrdup(f.pool, good);
    other_session[0] = '1'; /* the MAC of another session */
    CHECK(qwd_ticket_check(f.q, other_session, &checked, &why) == NULL);
    CHECK_STR(why, "bad signature");
    CHECK(qwd_ticket_check(f.q,
                           apr_psprintf(f.pool, "%s.%" APR_INT64_T_FMT ".%s.%s", SESSION, later + 1,
                                        NONCE, strrchr(good, '.') + 1),
                           &checked, &why)
          == NULL);
    CHECK_STR(why, "bad signature");
    /* the same ticket under another server key */
    memset(stub_server_config(f.s)->secret, 'x', QWD_SECRET_LEN);
    CHECK(qwd_ticket_check(f.q, good, &checked, &why) == NULL);
    CHECK_STR(why, "bad signature");
    /* shapes: a 40-digit (SHA-1) MAC, missing or extra fields, upper case, no ticket */
    CHECK(qwd_ticket_check(f.q, apr_pstrndup(f.pool, good, strlen(good) - 24), &checked, &why)
          == NULL);
    CHECK_STR(why, "malformed ticket");
    CHECK(qwd_ticket_check(f.q, apr_pstrcat(f.pool, good, ".00", NULL), &checked, &why) == NULL);
    CHECK_STR(why, "malformed ticket");
    CHECK(qwd_ticket_check(f.q, "0123456789ABCDEF0123456789abcdef.1.0011223344556677.00", &checked,
                           &why)
          == NULL);
    CHECK_STR(why, "malformed ticket");
    CHECK(qwd_ticket_check(f.q, "garbage", &checked, &why) == NULL);
    CHECK_STR(why, "malformed ticket");
    CHECK(qwd_ticket_check(f.q, NULL, &checked, &why) == NULL);
    CHECK_STR(why, "malformed ticket");
    apr_pool_destroy(f.pool);
}

UNIT_TEST(ticket_of_a_share_names_its_session_and_share)
{
    stub_fixture f;
    stub_fixture_open(&f);
    qwd_ticket_t checked = {NULL, 0, "unset"};
    const char *why, *ticket = qwd_ticket_mint_share(f.q, SESSION, "89abcdef01234567");
    CHECK(ticket && !strncmp(ticket, SESSION "-89abcdef01234567.", 50));
    CHECK_STR(qwd_ticket_check(f.q, ticket, &checked, &why), SESSION);
    CHECK_STR(checked.share_id, "89abcdef01234567");
    /* the session's own ticket names no share */
    CHECK_STR(qwd_ticket_check(f.q, qwd_ticket_mint(f.q, SESSION), &checked, &why), SESSION);
    CHECK(checked.share_id == NULL);
    /* another share of the same session under the same MAC: refused */
    char *other = apr_pstrdup(f.pool, ticket);
    other[33] = other[33] == '8' ? '9' : '8';
    CHECK(qwd_ticket_check(f.q, other, &checked, &why) == NULL);
    CHECK_STR(why, "bad signature");
    /* a share's part must be 16 lowercase hex digits after one '-' */
    static const char *const shapes[] = {"-89abcdef0123456", "-89ABCDEF01234567",
                                         "-89abcdef012345678", "--89abcdef0123456", "-"};
    apr_int64_t later = apr_time_sec(apr_time_now()) + 30;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const char *subject = apr_pstrcat(f.pool, SESSION, shapes[i], NULL);
        const char *fields =
            apr_psprintf(f.pool, "%s|%" APR_INT64_T_FMT "|%s", subject, later, NONCE);
        const char *forged =
            apr_psprintf(f.pool, "%s.%" APR_INT64_T_FMT ".%s.%s", subject, later, NONCE,
                         qwd_secret_sign(f.q, apr_pstrcat(f.pool, "ws|", fields, NULL)));
        CHECK(qwd_ticket_check(f.q, forged, &checked, &why) == NULL);
        CHECK_STR(why, "malformed ticket");
    }
    apr_pool_destroy(f.pool);
}

/* Found by fuzzing (test/fuzz/corpus/links/empty-ticket): a ticket with no field at all ("",
 * ".", "...") made the check read apr_strtok's unset state and crash the Apache child. */
UNIT_TEST(ticket_without_fields_is_refused)
{
    stub_fixture f;
    stub_fixture_open(&f);
    const char *empty[] = {"", ".", "...", "....", SESSION ".", SESSION ".1.", SESSION ".1." NONCE};
    qwd_ticket_t checked;
    const char *why;
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        CHECK(qwd_ticket_check(f.q, empty[i], &checked, &why) == NULL);
        CHECK_STR(why, "malformed ticket");
    }
    apr_pool_destroy(f.pool);
}
