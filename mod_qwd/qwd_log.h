/* Log numbers of mod_qwd: every error/warning line carries "QWDnnnnn: " (like httpd's APLOGNO)
 * so the tests can fail on any number they did not expect. Numbers are never reused. */
#ifndef QWD_LOG_H
#define QWD_LOG_H

#define QWDLOGNO(n) "QWD" #n ": "

#endif
