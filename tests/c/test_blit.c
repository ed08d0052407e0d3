/*
 * Tests of libblit through its C header, against a real blitd.
 *
 * scripts/test_c.sh builds this file with -Wall -Wextra -Werror, starts
 * blitd on 127.0.0.1 and runs it, once plainly and once under valgrind.
 * The environment names the daemon and the scratch space:
 *
 *   BLIT_TOKEN            a token with read, write, delete and admin on '*'
 *   BLIT_TEST_URL         the daemon, blit://127.0.0.1:PORT/
 *   BLIT_TEST_MODULE_DIR  the directory that the writable module "m" serves
 *   BLIT_TEST_RO_DIR      the directory of the read-only module "ro"
 *   BLIT_TEST_TMP         an empty scratch directory for local files
 *   BLIT_TEST_TLS_URL     a second daemon with the same modules over TLS,
 *                         blits://127.0.0.1:PORT/
 *   BLIT_TEST_TLS_CA      the PEM file of the CA that signed its certificate
 *   BLIT_TEST_BLITD       the blitd program, which the test daemon_lost
 *                         starts with BLIT_TEST_VICTIM_CONFIG to kill it
 *                         while it receives a push
 *   BLIT_TEST_VICTIM_URL  the address that this config listens on
 *
 * Each test prints "ok NAME" or "FAIL NAME" with the failed checks, and the
 * program ends with "N passed, N failed" and exits 1 if any test failed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blit.h"

#define MIB (1024 * 1024)

/* A name that is not valid UTF-8, as a Latin-1 file system might hold. */
#define LATIN1_NAME "caf\xe9-\xff.txt"

/* ---- Checks ------------------------------------------------------------ */

/* Failed checks so far, across all threads. */
static atomic_int check_failures;

static void fail_check(int line, const char *text) {
  atomic_fetch_add(&check_failures, 1);
  printf("  line %d: check failed: %s\n", line, text);
}

/* Returns the calling thread's last libblit error message. */
static const char *last_error(void) {
  static _Thread_local char message[2048];
  size_t len = 0;
  if (blit_last_error(message, sizeof message, &len) != BLIT_RESULT_OK) {
    snprintf(message, sizeof message, "(blit_last_error failed)");
  }
  return message;
}

static void fail_result(int line, const char *call, blit_result actual,
                        blit_result expected) {
  atomic_fetch_add(&check_failures, 1);
  printf("  line %d: %s returned %s, expected %s; last error: %s\n", line,
         call, blit_result_name(actual), blit_result_name(expected),
         last_error());
}

#define CHECK(condition)                                                       \
  do {                                                                         \
    if (!(condition)) {                                                        \
      fail_check(__LINE__, #condition);                                        \
    }                                                                          \
  } while (0)

/* Checks that a call returns `expected`; the call runs exactly once. */
#define CHECK_RESULT(call, expected)                                           \
  do {                                                                         \
    blit_result actual_ = (call);                                              \
    if (actual_ != (expected)) {                                               \
      fail_result(__LINE__, #call, actual_, (expected));                       \
    }                                                                          \
  } while (0)

#define CHECK_OK(call) CHECK_RESULT(call, BLIT_RESULT_OK)

/* Checks that the last error message contains `part`. */
#define CHECK_ERROR_MENTIONS(part)                                             \
  do {                                                                         \
    const char *message_ = last_error();                                       \
    if (strstr(message_, (part)) == NULL) {                                    \
      atomic_fetch_add(&check_failures, 1);                                    \
      printf("  line %d: last error does not mention \"%s\": %s\n", __LINE__,  \
             (part), message_);                                                \
    }                                                                          \
  } while (0)

/* ---- Environment and files --------------------------------------------- */

static const char *daemon_url;
static const char *module_dir;
static const char *read_only_dir;
static const char *scratch;
static const char *tls_url;
static const char *tls_ca;
static const char *blitd_program;
static const char *victim_config;
static const char *victim_url;

static const char *require_env(const char *name) {
  const char *value = getenv(name);
  if (value == NULL || value[0] == '\0') {
    fprintf(stderr, "test_blit: %s is not set; run scripts/test_c.sh\n", name);
    exit(2);
  }
  return value;
}

/* Formats a path or address into a new static-free buffer of PATH_MAX. */
typedef struct {
  char text[PATH_MAX];
} path_buf;

static path_buf join(const char *base, const char *name) {
  path_buf path;
  size_t len = strlen(base);
  const char *separator = (len > 0 && base[len - 1] == '/') ? "" : "/";
  snprintf(path.text, sizeof path.text, "%s%s%s", base, separator, name);
  return path;
}

static path_buf scratch_path(const char *name) { return join(scratch, name); }

static path_buf url_of(const char *module_path) {
  return join(daemon_url, module_path);
}

static void make_dirs(const char *path) {
  char partial[PATH_MAX];
  snprintf(partial, sizeof partial, "%s", path);
  for (char *slash = partial + 1; *slash != '\0'; slash++) {
    if (*slash == '/') {
      *slash = '\0';
      mkdir(partial, 0755);
      *slash = '/';
    }
  }
  mkdir(partial, 0755);
}

static void write_file(const char *path, const char *content, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    printf("  cannot create %s: %s\n", path, strerror(errno));
    atomic_fetch_add(&check_failures, 1);
    return;
  }
  size_t done = 0;
  while (done < len) {
    ssize_t written = write(fd, content + done, len - done);
    if (written <= 0) {
      break;
    }
    done += (size_t)written;
  }
  close(fd);
}

/* Writes a file of `mib` MiB in which every MiB starts with its index. */
static void write_big_file(const char *path, size_t mib) {
  char *block = malloc(MIB);
  memset(block, 'b', MIB);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (size_t i = 0; fd >= 0 && i < mib; i++) {
    memcpy(block, &i, sizeof i);
    if (write(fd, block, MIB) != MIB) {
      break;
    }
  }
  if (fd >= 0) {
    close(fd);
  }
  free(block);
}

/* Returns whether the file at `path` contains exactly `expected`. */
static int file_has(const char *path, const char *expected) {
  char buffer[8192];
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    return 0;
  }
  ssize_t len = read(fd, buffer, sizeof buffer);
  close(fd);
  return len == (ssize_t)strlen(expected) &&
         memcmp(buffer, expected, (size_t)len) == 0;
}

static int exists(const char *path) {
  struct stat info;
  return lstat(path, &info) == 0;
}

/* Counts blit's temporary files (".blit-*.tmp") directly in `dir`. */
static int count_temp_files(const char *dir) {
  DIR *listing = opendir(dir);
  int count = 0;
  if (listing == NULL) {
    return 0;
  }
  for (struct dirent *entry; (entry = readdir(listing)) != NULL;) {
    size_t len = strlen(entry->d_name);
    if (strncmp(entry->d_name, ".blit-", 6) == 0 && len > 4 &&
        strcmp(entry->d_name + len - 4, ".tmp") == 0) {
      count++;
    }
  }
  closedir(listing);
  return count;
}

/*
 * Creates the standard test tree under `root`:
 *   a.txt, sub/b.txt, sub/deeper/c.txt and a file whose name is not UTF-8.
 * `tag` goes into every file, so that trees of different tests differ.
 */
static void make_tree(const char *root, const char *tag) {
  char content[256];
  make_dirs(join(root, "sub/deeper").text);
  snprintf(content, sizeof content, "alpha %s\n", tag);
  write_file(join(root, "a.txt").text, content, strlen(content));
  snprintf(content, sizeof content, "bravo %s\n", tag);
  write_file(join(root, "sub/b.txt").text, content, strlen(content));
  snprintf(content, sizeof content, "charlie %s\n", tag);
  write_file(join(root, "sub/deeper/c.txt").text, content, strlen(content));
  snprintf(content, sizeof content, "latin-1 %s\n", tag);
  write_file(join(root, LATIN1_NAME).text, content, strlen(content));
}

/* The file content bytes of a tree from make_tree with `tag`. */
static uint64_t tree_bytes(const char *tag) {
  return (uint64_t)(strlen("alpha \n") + strlen("bravo \n") +
                    strlen("charlie \n") + strlen("latin-1 \n") +
                    4 * strlen(tag));
}

/* Checks that `root` contains the tree that make_tree wrote with `tag`. */
#define CHECK_TREE(root, tag) check_tree(__LINE__, (root), (tag))

static void check_tree(int line, const char *root, const char *tag) {
  static const char *const names[] = {"a.txt", "sub/b.txt", "sub/deeper/c.txt",
                                      LATIN1_NAME};
  static const char *const words[] = {"alpha", "bravo", "charlie", "latin-1"};
  for (size_t i = 0; i < 4; i++) {
    char expected[256];
    snprintf(expected, sizeof expected, "%s %s\n", words[i], tag);
    path_buf path = join(root, names[i]);
    if (!file_has(path.text, expected)) {
      atomic_fetch_add(&check_failures, 1);
      printf("  line %d: %s does not contain \"%s %s\"\n", line, path.text,
             words[i], tag);
    }
  }
}

static uint64_t summary_count(const blit_summary *summary,
                              blit_result (*getter)(const blit_summary *,
                                                    uint64_t *)) {
  uint64_t value = UINT64_MAX;
  CHECK_OK(getter(summary, &value));
  return value;
}

static blit_options *new_options(void) {
  blit_options *options = NULL;
  CHECK_OK(blit_options_new(&options));
  return options;
}

/* Connects a client to the test daemon with the token from BLIT_TOKEN. */
static blit_client *connect_client(void) {
  blit_client *client = NULL;
  CHECK_OK(blit_client_connect(daemon_url, NULL, &client));
  return client;
}

/* ---- Progress callbacks ------------------------------------------------ */

typedef struct {
  int calls;
  int cancel;
  int bytes_went_back;
  blit_phase first_phase;
  blit_phase last_phase;
  uint64_t last_bytes_done;
  uint64_t last_bytes_total;
  uint64_t last_entries_done;
  uint64_t last_entries_total;
} progress_log;

/* Records each snapshot; returns non-zero to cancel when log->cancel. */
static int record_progress(const blit_progress *progress, void *user_data) {
  progress_log *log = user_data;
  if (log->calls == 0) {
    log->first_phase = progress->phase;
  }
  if (progress->bytes_done < log->last_bytes_done) {
    log->bytes_went_back = 1;
  }
  log->calls++;
  log->last_phase = progress->phase;
  log->last_bytes_done = progress->bytes_done;
  log->last_bytes_total = progress->bytes_total;
  log->last_entries_done = progress->entries_done;
  log->last_entries_total = progress->entries_total;
  return log->cancel;
}

/* ---- Tests: library basics --------------------------------------------- */

static void test_version(void) {
  CHECK(BLIT_ABI_VERSION == 1);
  CHECK(blit_version() != NULL);
  CHECK(strncmp(blit_version(), "2.", 2) == 0);
  CHECK(strcmp(blit_result_name(BLIT_RESULT_NOT_FOUND),
               "BLIT_RESULT_NOT_FOUND") == 0);
  CHECK(strcmp(blit_result_name(BLIT_RESULT_PARTIAL), "BLIT_RESULT_PARTIAL") ==
        0);
  CHECK(strcmp(blit_result_name(999), "BLIT_RESULT_UNKNOWN") == 0);
}

static void test_result_numbers(void) {
  CHECK(BLIT_RESULT_OK == 0);
  CHECK(BLIT_RESULT_INVALID_ARGUMENT == 1);
  CHECK(BLIT_RESULT_NOT_FOUND == 2);
  CHECK(BLIT_RESULT_PERMISSION_DENIED == 3);
  CHECK(BLIT_RESULT_UNAUTHENTICATED == 4);
  CHECK(BLIT_RESULT_CONFLICT == 5);
  CHECK(BLIT_RESULT_RESOURCE_EXHAUSTED == 6);
  CHECK(BLIT_RESULT_TRANSFER == 7);
  CHECK(BLIT_RESULT_NETWORK == 8);
  CHECK(BLIT_RESULT_CANCELLED == 9);
  CHECK(BLIT_RESULT_INTERNAL == 10);
  CHECK(BLIT_RESULT_PARTIAL == 11);
}

static void test_free_null(void) {
  blit_options_free(NULL);
  blit_cancel_free(NULL);
  blit_client_free(NULL);
  blit_summary_free(NULL);
  blit_list_free(NULL);
  blit_module_list_free(NULL);
  blit_status_free(NULL);
  CHECK(1);
}

static void test_null_arguments(void) {
  blit_summary *summary = (blit_summary *)&summary;
  blit_options *options = new_options();
  uint64_t count = 7;

  CHECK_RESULT(blit_options_new(NULL), BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_copy(NULL, "dst", NULL, &summary),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("blit_copy: src is NULL");
  CHECK_RESULT(blit_copy("src", NULL, NULL, &summary),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_copy("src", "dst", NULL, NULL),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("out_summary is NULL");
  CHECK_RESULT(blit_push(NULL, "blit://127.0.0.1/m", NULL, &summary),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_pull("blit://127.0.0.1/m", NULL, NULL, &summary),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_client_connect(NULL, NULL, NULL),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_client_push(NULL, "src", "m/x", NULL, &summary),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("client is NULL");
  CHECK_RESULT(blit_client_list(NULL, "m", false, NULL),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_client_purge(NULL, NULL, 0, NULL),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_options_set_mirror(NULL, true),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_options_add_exclude(options, NULL),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_cancel_trigger(NULL), BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_summary_bytes(NULL, &count), BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_list_len(NULL, NULL), BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_module_list_get(NULL, 0, NULL),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_status_version(NULL, NULL), BLIT_RESULT_INVALID_ARGUMENT);

  /* Out-parameters stay unchanged on failure. */
  CHECK(summary == (blit_summary *)&summary);
  CHECK(count == 7);
  blit_options_free(options);
}

static void test_invalid_utf8(void) {
  blit_options *options = new_options();
  blit_client *client = (blit_client *)&client;
  blit_summary *summary = NULL;

  CHECK_RESULT(blit_options_set_token(options, "secret\xff\xfe"),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("not valid UTF-8");
  /* No message shows a token. */
  CHECK(strstr(last_error(), "secret") == NULL);
  CHECK_RESULT(blit_options_add_exclude(options, "*.\xff"),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_client_connect("blit://127.0.0.1:1/\xff", NULL, &client),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK(client == (blit_client *)&client);
  CHECK_RESULT(blit_push(scratch, "blit://127.0.0.1:1/m\xff/x", NULL, &summary),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK(summary == NULL);

  /* A module name is checked before any request. */
  client = connect_client();
  blit_list *list = NULL;
  CHECK_RESULT(blit_client_list(client, "m\xff/x", false, &list),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("module name");
  CHECK(list == NULL);
  blit_client_free(client);
  blit_options_free(options);
}

static void test_invalid_options(void) {
  blit_options *options = new_options();

  CHECK_RESULT(blit_options_set_threads(options, 100000),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("threads = 100000");
  CHECK_OK(blit_options_set_threads(options, 4));
  CHECK_RESULT(blit_options_add_exclude(options, "[unclosed"),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_OK(blit_options_add_exclude(options, "*.log"));
  CHECK_OK(blit_options_clear_excludes(options));
  CHECK_OK(blit_options_set_token(options, NULL));
  CHECK_OK(blit_options_set_tls_ca(options, NULL));
  blit_options_free(options);
}

static void *read_last_error_on_new_thread(void *unused) {
  (void)unused;
  return strcmp(last_error(), "") == 0 ? (void *)1 : NULL;
}

static void test_last_error(void) {
  char small[8];
  size_t len = 0;
  const char *expected = "blit_copy: src is NULL";

  CHECK_RESULT(blit_copy(NULL, "dst", NULL, NULL),
               BLIT_RESULT_INVALID_ARGUMENT);

  /* Length only. */
  CHECK_OK(blit_last_error(NULL, 0, &len));
  CHECK(len == strlen(expected));
  /* Truncated, NUL-terminated, full length reported. */
  CHECK_OK(blit_last_error(small, sizeof small, &len));
  CHECK(strcmp(small, "blit_co") == 0);
  CHECK(len == strlen(expected));
  CHECK_RESULT(blit_last_error(NULL, 4, &len), BLIT_RESULT_INVALID_ARGUMENT);
  /* That failure left the message alone. */
  CHECK(strcmp(last_error(), expected) == 0);

  /* The message is per thread. */
  pthread_t thread;
  void *empty = NULL;
  CHECK(pthread_create(&thread, NULL, read_last_error_on_new_thread, NULL) ==
        0);
  CHECK(pthread_join(thread, &empty) == 0);
  CHECK(empty != NULL);

  /* A successful call clears it. */
  blit_options *options = new_options();
  CHECK(strcmp(last_error(), "") == 0);
  blit_options_free(options);
}

/* ---- Tests: local copy ------------------------------------------------- */

static void test_copy_round_trip(void) {
  path_buf src = scratch_path("copy-src");
  path_buf dst = scratch_path("copy-dst");
  path_buf back = scratch_path("copy-back");
  blit_summary *summary = NULL;
  make_tree(src.text, "copy");

  CHECK_OK(blit_copy(src.text, dst.text, NULL, &summary));
  CHECK_TREE(dst.text, "copy");
  CHECK(summary_count(summary, blit_summary_transferred) >= 4);
  CHECK(summary_count(summary, blit_summary_failed) == 0);
  CHECK(summary_count(summary, blit_summary_bytes) == tree_bytes("copy"));
  double seconds = -1;
  CHECK_OK(blit_summary_seconds(summary, &seconds));
  CHECK(seconds >= 0);
  blit_summary_free(summary);

  CHECK_OK(blit_copy(dst.text, back.text, NULL, &summary));
  CHECK_TREE(back.text, "copy");
  blit_summary_free(summary);

  /* A second copy finds everything current. */
  CHECK_OK(blit_copy(src.text, dst.text, NULL, &summary));
  CHECK(summary_count(summary, blit_summary_transferred) == 0);
  CHECK(summary_count(summary, blit_summary_skipped) >= 4);
  CHECK(summary_count(summary, blit_summary_bytes) == 0);
  blit_summary_free(summary);
}

static void test_mirror_deletes(void) {
  path_buf src = scratch_path("mirror-src");
  path_buf dst = scratch_path("mirror-dst");
  blit_summary *summary = NULL;
  blit_options *options = new_options();
  make_tree(src.text, "mirror");
  CHECK_OK(blit_copy(src.text, dst.text, NULL, &summary));
  blit_summary_free(summary);
  unlink(join(src.text, "a.txt").text);

  CHECK_OK(blit_options_set_mirror(options, true));
  CHECK_OK(blit_copy(src.text, dst.text, options, &summary));

  CHECK(summary_count(summary, blit_summary_deleted) == 1);
  CHECK(!exists(join(dst.text, "a.txt").text));
  CHECK(exists(join(dst.text, "sub/b.txt").text));
  blit_summary_free(summary);
  blit_options_free(options);
}

static void test_copy_options(void) {
  path_buf src = scratch_path("options-src");
  path_buf dst = scratch_path("options-dst");
  blit_summary *summary = NULL;
  blit_options *options = new_options();
  make_tree(src.text, "options");
  write_file(join(src.text, "debug.log").text, "log\n", 4);

  CHECK_OK(blit_options_add_exclude(options, "*.log"));
  CHECK_OK(blit_options_set_checksum(options, true));
  CHECK_OK(blit_options_set_fsync(options, true));
  CHECK_OK(blit_options_set_threads(options, 2));
  CHECK_OK(blit_copy(src.text, dst.text, options, &summary));

  CHECK_TREE(dst.text, "options");
  CHECK(!exists(join(dst.text, "debug.log").text));
  blit_summary_free(summary);
  blit_options_free(options);
}

static void test_dry_run_lists_changes(void) {
  path_buf src = scratch_path("dry-src");
  path_buf dst = scratch_path("dry-dst");
  blit_summary *summary = NULL;
  blit_options *options = new_options();
  make_tree(src.text, "dry");

  CHECK_OK(blit_options_set_dry_run(options, true));
  CHECK_OK(blit_copy(src.text, dst.text, options, &summary));

  CHECK(!exists(dst.text));
  bool dry_run = false;
  CHECK_OK(blit_summary_dry_run(summary, &dry_run));
  CHECK(dry_run);
  size_t changes = 0;
  CHECK_OK(blit_summary_change_count(summary, &changes));
  CHECK(changes >= 4);
  int copies = 0;
  for (size_t i = 0; i < changes; i++) {
    const blit_change *change = NULL;
    CHECK_OK(blit_summary_change(summary, i, &change));
    if (change != NULL && change->kind == BLIT_CHANGE_KIND_COPY) {
      copies++;
      CHECK(change->path[change->path_len] == '\0');
    }
  }
  CHECK(copies == 4);
  const blit_change *change = NULL;
  CHECK_RESULT(blit_summary_change(summary, changes, &change),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("out of range");
  blit_summary_free(summary);
  blit_options_free(options);
}

static void test_copy_missing_source(void) {
  path_buf missing = scratch_path("no-such-source");
  path_buf dst = scratch_path("missing-dst");
  blit_summary *summary = NULL;

  CHECK_RESULT(blit_copy(missing.text, dst.text, NULL, &summary),
               BLIT_RESULT_NOT_FOUND);

  CHECK_ERROR_MENTIONS(missing.text);
  CHECK(summary == NULL);
}

static void test_copy_rejects_bad_addresses(void) {
  blit_summary *summary = NULL;
  blit_options *options = new_options();
  path_buf src = scratch_path("copy-src");

  CHECK_RESULT(blit_copy("host:module/path", "dst", NULL, &summary),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("v1 address");
  CHECK_RESULT(
      blit_copy(url_of("m/a").text, url_of("m/b").text, NULL, &summary),
      BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("remote to remote");
  CHECK_OK(blit_options_set_force_grpc_data(options, true));
  CHECK_RESULT(blit_copy(src.text, scratch_path("grpc").text, options, &summary),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("force_grpc_data");
  CHECK(summary == NULL);
  blit_options_free(options);
}

static void test_copy_partial(void) {
  path_buf src = scratch_path("partial-src");
  path_buf dst = scratch_path("partial-dst");
  blit_summary *summary = NULL;
  make_tree(src.text, "partial");
  CHECK(mkfifo(join(src.text, "pipe").text, 0644) == 0);

  CHECK_RESULT(blit_copy(src.text, dst.text, NULL, &summary),
               BLIT_RESULT_PARTIAL);

  CHECK_ERROR_MENTIONS("pipe");
  CHECK(summary != NULL);
  CHECK_TREE(dst.text, "partial");
  CHECK(summary_count(summary, blit_summary_failed) == 1);
  size_t failures = 0;
  CHECK_OK(blit_summary_failure_count(summary, &failures));
  CHECK(failures == 1);
  const blit_failure *failure = NULL;
  CHECK_OK(blit_summary_failure(summary, 0, &failure));
  if (failure != NULL) {
    CHECK(failure->path_len == 4);
    CHECK(memcmp(failure->path, "pipe", 4) == 0);
    CHECK(strstr(failure->message, "unsupported file type") != NULL);
  }
  CHECK_RESULT(blit_summary_failure(summary, 1, &failure),
               BLIT_RESULT_INVALID_ARGUMENT);
  blit_summary_free(summary);
}

static void test_progress_sees_final_total(void) {
  path_buf src = scratch_path("progress-src");
  path_buf dst = scratch_path("progress-dst");
  blit_summary *summary = NULL;
  blit_options *options = new_options();
  progress_log log = {0};
  make_dirs(src.text);
  write_big_file(join(src.text, "big.bin").text, 32);
  write_file(join(src.text, "small.txt").text, "small\n", 6);

  CHECK_OK(blit_options_set_progress(options, record_progress, &log));
  CHECK_OK(blit_copy(src.text, dst.text, options, &summary));

  uint64_t bytes = summary_count(summary, blit_summary_bytes);
  CHECK(bytes == 32 * MIB + 6);
  CHECK(log.calls >= 1);
  CHECK(log.last_phase == BLIT_PHASE_DONE);
  CHECK(log.last_bytes_done == bytes);
  CHECK(log.last_bytes_total == bytes);
  CHECK(log.last_entries_done >= 2);
  CHECK(log.last_entries_done == log.last_entries_total);
  CHECK(!log.bytes_went_back);
  blit_summary_free(summary);
  blit_options_free(options);
  unlink(join(src.text, "big.bin").text);
  unlink(join(dst.text, "big.bin").text);
}

static void test_cancel_from_callback(void) {
  /* Larger files until the first progress call comes before the copy
     ends; a fast disk may finish the small ones within 100 ms. */
  static const size_t sizes_mib[] = {64, 256, 1024};
  path_buf src = scratch_path("cancel-src");
  path_buf dst = scratch_path("cancel-dst");
  path_buf src_file = join(src.text, "big.bin");
  path_buf dst_file = join(dst.text, "big.bin");
  blit_options *options = new_options();
  int cancelled = 0;
  make_dirs(src.text);
  make_dirs(dst.text);

  for (size_t i = 0; i < sizeof sizes_mib / sizeof sizes_mib[0]; i++) {
    progress_log log = {0};
    log.cancel = 1;
    blit_summary *summary = NULL;
    write_big_file(src_file.text, sizes_mib[i]);
    CHECK_OK(blit_options_set_progress(options, record_progress, &log));

    blit_result result =
        blit_copy(src_file.text, dst_file.text, options, &summary);

    if (result == BLIT_RESULT_CANCELLED) {
      cancelled = 1;
      CHECK(summary == NULL);
      CHECK(log.calls == 1);
      CHECK(log.first_phase != BLIT_PHASE_DONE);
      CHECK(!exists(dst_file.text));
      CHECK(count_temp_files(dst.text) == 0);
      CHECK_ERROR_MENTIONS("cancelled");
      break;
    }
    /* The copy ended before the callback could stop it. */
    CHECK_OK(result);
    blit_summary_free(summary);
    unlink(dst_file.text);
  }
  CHECK(cancelled);
  unlink(src_file.text);
  blit_options_free(options);
}

static void test_cancel_token(void) {
  path_buf src = scratch_path("copy-src");
  path_buf dst = scratch_path("token-dst");
  blit_options *options = new_options();
  blit_cancel *cancel = NULL;
  blit_summary *summary = NULL;
  bool triggered = true;
  CHECK_OK(blit_cancel_new(&cancel));
  CHECK_OK(blit_options_set_cancel(options, cancel));

  CHECK_OK(blit_cancel_is_triggered(cancel, &triggered));
  CHECK(!triggered);
  CHECK_OK(blit_cancel_trigger(cancel));
  CHECK_OK(blit_cancel_is_triggered(cancel, &triggered));
  CHECK(triggered);
  /* The options keep the token alive after the handle is freed. */
  blit_cancel_free(cancel);

  CHECK_RESULT(blit_copy(src.text, dst.text, options, &summary),
               BLIT_RESULT_CANCELLED);
  CHECK(summary == NULL);
  CHECK(!exists(dst.text));

  /* Detached, the options copy again. */
  CHECK_OK(blit_options_set_cancel(options, NULL));
  CHECK_OK(blit_copy(src.text, dst.text, options, &summary));
  CHECK_TREE(dst.text, "copy");
  blit_summary_free(summary);
  blit_options_free(options);
}

/* ---- Tests: daemon ----------------------------------------------------- */

static void test_status(void) {
  blit_client *client = connect_client();
  blit_status *status = NULL;
  const char *version = NULL;
  uint64_t uptime = UINT64_MAX;
  uint32_t sessions = UINT32_MAX;

  CHECK_OK(blit_client_status(client, &status));
  CHECK_OK(blit_status_version(status, &version));
  CHECK(version != NULL);
  CHECK(version == NULL || strcmp(version, blit_version()) == 0);
  CHECK_OK(blit_status_uptime_seconds(status, &uptime));
  CHECK(uptime < 24 * 3600);
  CHECK_OK(blit_status_active_sessions(status, &sessions));
  CHECK(sessions < 1000);
  blit_status_free(status);
  blit_client_free(client);
}

static void test_list_modules(void) {
  blit_client *client = connect_client();
  blit_module_list *modules = NULL;
  size_t count = 0;
  int saw_writable = 0, saw_read_only = 0;

  CHECK_OK(blit_client_list_modules(client, &modules));
  CHECK_OK(blit_module_list_len(modules, &count));
  CHECK(count == 2);
  for (size_t i = 0; i < count; i++) {
    const blit_module *module = NULL;
    CHECK_OK(blit_module_list_get(modules, i, &module));
    if (module == NULL) {
      continue;
    }
    if (strcmp(module->name, "m") == 0) {
      saw_writable = !module->read_only;
      CHECK(strcmp(module->comment, "writable test module") == 0);
    } else if (strcmp(module->name, "ro") == 0) {
      saw_read_only = module->read_only;
    }
  }
  CHECK(saw_writable);
  CHECK(saw_read_only);
  const blit_module *module = NULL;
  CHECK_RESULT(blit_module_list_get(modules, count, &module),
               BLIT_RESULT_INVALID_ARGUMENT);
  blit_module_list_free(modules);
  blit_client_free(client);
}

static void test_push_pull_round_trip(void) {
  path_buf src = scratch_path("push-src");
  path_buf back = scratch_path("pull-back");
  path_buf pushed = join(module_dir, "c-round-trip");
  blit_client *client = connect_client();
  blit_options *options = new_options();
  blit_summary *summary = NULL;
  make_tree(src.text, "push");

  /* The token given as an option instead of through BLIT_TOKEN. */
  CHECK_OK(blit_options_set_token(options, getenv("BLIT_TOKEN")));
  CHECK_OK(blit_client_push(client, src.text, "m/c-round-trip", options,
                            &summary));
  CHECK_TREE(pushed.text, "push");
  CHECK(summary_count(summary, blit_summary_bytes) == tree_bytes("push"));
  CHECK(summary_count(summary, blit_summary_failed) == 0);
  blit_summary_free(summary);

  CHECK_OK(blit_client_pull(client, "m/c-round-trip", back.text, NULL,
                            &summary));
  CHECK_TREE(back.text, "push");
  CHECK(summary_count(summary, blit_summary_bytes) == tree_bytes("push"));
  blit_summary_free(summary);

  /* Over the gRPC stream instead of the data port. */
  path_buf grpc_back = scratch_path("pull-grpc");
  CHECK_OK(blit_options_set_force_grpc_data(options, true));
  CHECK_OK(blit_client_pull(client, url_of("m/c-round-trip").text,
                            grpc_back.text, options, &summary));
  CHECK_TREE(grpc_back.text, "push");
  blit_summary_free(summary);
  blit_options_free(options);
  blit_client_free(client);
}

static void test_push_pull_by_url(void) {
  path_buf src = scratch_path("url-src");
  path_buf back = scratch_path("url-back");
  path_buf copied_back = scratch_path("url-copy-back");
  blit_summary *summary = NULL;
  make_tree(src.text, "url");

  CHECK_OK(blit_push(src.text, url_of("m/c-url").text, NULL, &summary));
  CHECK_TREE(join(module_dir, "c-url").text, "url");
  blit_summary_free(summary);
  CHECK_OK(blit_pull(url_of("m/c-url").text, back.text, NULL, &summary));
  CHECK_TREE(back.text, "url");
  blit_summary_free(summary);

  /* blit_copy routes on its addresses: a push, then a pull. */
  CHECK_OK(blit_copy(src.text, url_of("m/c-copy").text, NULL, &summary));
  CHECK_TREE(join(module_dir, "c-copy").text, "url");
  blit_summary_free(summary);
  CHECK_OK(blit_copy(url_of("m/c-copy").text, copied_back.text, NULL, &summary));
  CHECK_TREE(copied_back.text, "url");
  blit_summary_free(summary);
}

static void test_list(void) {
  path_buf src = scratch_path("list-src");
  blit_client *client = connect_client();
  blit_summary *summary = NULL;
  blit_list *list = NULL;
  size_t len = 0;
  make_tree(src.text, "list");
  CHECK_OK(blit_client_push(client, src.text, "m/c-list", NULL, &summary));
  blit_summary_free(summary);

  CHECK_OK(blit_client_list(client, "m/c-list", false, &list));
  CHECK_OK(blit_list_len(list, &len));
  CHECK(len == 3);
  int saw_file = 0, saw_dir = 0, saw_latin1 = 0;
  for (size_t i = 0; i < len; i++) {
    const blit_entry *entry = NULL;
    CHECK_OK(blit_list_get(list, i, &entry));
    if (entry == NULL) {
      continue;
    }
    CHECK(entry->path[entry->path_len] == '\0');
    if (entry->path_len == 5 && memcmp(entry->path, "a.txt", 5) == 0) {
      saw_file = entry->kind == BLIT_ENTRY_KIND_FILE &&
                 entry->size == strlen("alpha list\n") &&
                 (entry->mode & 0777) == 0644 && entry->mtime_sec > 0 &&
                 entry->mtime_nsec < 1000000000;
    } else if (entry->path_len == 3 && memcmp(entry->path, "sub", 3) == 0) {
      saw_dir = entry->kind == BLIT_ENTRY_KIND_DIR;
    } else if (entry->path_len == strlen(LATIN1_NAME) &&
               memcmp(entry->path, LATIN1_NAME, entry->path_len) == 0) {
      saw_latin1 = 1;
    }
  }
  CHECK(saw_file);
  CHECK(saw_dir);
  CHECK(saw_latin1);
  const blit_entry *entry = NULL;
  CHECK_RESULT(blit_list_get(list, len, &entry), BLIT_RESULT_INVALID_ARGUMENT);
  blit_list_free(list);

  /* Recursive, through a full address of the client's daemon. */
  CHECK_OK(blit_client_list(client, url_of("m/c-list").text, true, &list));
  CHECK_OK(blit_list_len(list, &len));
  CHECK(len == 6);
  blit_list_free(list);

  /* A non-UTF-8 path after the module names the file exactly. */
  CHECK_OK(blit_client_list(client, "m/c-list/" LATIN1_NAME, false, &list));
  CHECK_OK(blit_list_len(list, &len));
  CHECK(len == 1);
  blit_list_free(list);

  list = NULL;
  CHECK_RESULT(blit_client_list(client, "blit://192.0.2.1:9/m", false, &list),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("names another daemon");
  CHECK(list == NULL);
  blit_client_free(client);
}

static void test_purge(void) {
  path_buf src = scratch_path("purge-src");
  path_buf pushed = join(module_dir, "c-purge");
  blit_client *client = connect_client();
  blit_summary *summary = NULL;
  uint64_t deleted = UINT64_MAX;
  make_tree(src.text, "purge");
  CHECK_OK(blit_client_push(client, src.text, "m/c-purge", NULL, &summary));
  blit_summary_free(summary);

  const char *paths[] = {"m/c-purge/a.txt", "m/c-purge/sub"};
  CHECK_OK(blit_client_purge(client, paths, 2, &deleted));

  /* a.txt, and sub with b.txt, deeper and c.txt. */
  CHECK(deleted == 5);
  CHECK(!exists(join(pushed.text, "a.txt").text));
  CHECK(!exists(join(pushed.text, "sub").text));
  CHECK(exists(join(pushed.text, LATIN1_NAME).text));

  deleted = 99;
  CHECK_RESULT(blit_client_purge(client, paths, 1, &deleted),
               BLIT_RESULT_NOT_FOUND);
  CHECK_ERROR_MENTIONS("a.txt");
  const char *root[] = {"m"};
  CHECK_RESULT(blit_client_purge(client, root, 1, &deleted),
               BLIT_RESULT_INVALID_ARGUMENT);
  const char *two_modules[] = {"m/c-purge", "ro/readme.txt"};
  CHECK_RESULT(blit_client_purge(client, two_modules, 2, &deleted),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("more than one module");
  CHECK_RESULT(blit_client_purge(client, paths, 0, &deleted),
               BLIT_RESULT_INVALID_ARGUMENT);
  const char *read_only[] = {"ro/readme.txt"};
  CHECK_RESULT(blit_client_purge(client, read_only, 1, &deleted),
               BLIT_RESULT_PERMISSION_DENIED);
  CHECK(exists(join(read_only_dir, "readme.txt").text));
  CHECK(deleted == 99);
  blit_client_free(client);
}

static void test_remote_errors(void) {
  blit_client *client = connect_client();
  blit_summary *summary = NULL;
  blit_list *list = NULL;
  path_buf src = scratch_path("copy-src");
  path_buf missing = scratch_path("no-such-source");

  CHECK_RESULT(blit_client_list(client, "nosuchmodule", false, &list),
               BLIT_RESULT_NOT_FOUND);
  CHECK_ERROR_MENTIONS("nosuchmodule");
  CHECK_RESULT(blit_client_push(client, src.text, "nosuchmodule/x", NULL,
                                &summary),
               BLIT_RESULT_NOT_FOUND);
  CHECK_RESULT(blit_client_list(client, "m/no/such/dir", false, &list),
               BLIT_RESULT_NOT_FOUND);
  CHECK_RESULT(blit_client_push(client, missing.text, "m/c-missing", NULL,
                                &summary),
               BLIT_RESULT_NOT_FOUND);
  CHECK_ERROR_MENTIONS(missing.text);
  CHECK_RESULT(blit_client_push(client, src.text, "ro/c-denied", NULL,
                                &summary),
               BLIT_RESULT_PERMISSION_DENIED);
  CHECK_RESULT(blit_client_list(client, "m/../escape", false, &list),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(blit_client_push(client, src.text, "", NULL, &summary),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("names no module");
  CHECK(summary == NULL);
  CHECK(list == NULL);
  blit_client_free(client);

  /* Options that apply only to a local copy. */
  blit_options *options = new_options();
  CHECK_OK(blit_options_set_threads(options, 2));
  CHECK_RESULT(blit_push(src.text, url_of("m/c-threads").text, options,
                         &summary),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("threads = 2");
  blit_options_free(options);
}

static void test_wrong_token(void) {
  blit_options *options = new_options();
  blit_client *client = NULL;
  blit_module_list *modules = NULL;
  blit_summary *summary = NULL;
  path_buf src = scratch_path("copy-src");
  CHECK_OK(blit_options_set_token(options, "not-a-valid-token"));

  CHECK_OK(blit_client_connect(daemon_url, options, &client));
  CHECK_RESULT(blit_client_list_modules(client, &modules),
               BLIT_RESULT_UNAUTHENTICATED);
  CHECK(modules == NULL);
  CHECK_RESULT(blit_push(src.text, url_of("m/c-wrong-token").text, options,
                         &summary),
               BLIT_RESULT_UNAUTHENTICATED);
  CHECK(summary == NULL);
  CHECK(!exists(join(module_dir, "c-wrong-token").text));
  blit_client_free(client);

  /* A token that cannot go into a header is rejected before connecting. */
  client = NULL;
  CHECK_OK(blit_options_set_token(options, "bad\ntoken"));
  CHECK_RESULT(blit_client_connect(daemon_url, options, &client),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("printable ASCII");
  CHECK(client == NULL);
  blit_options_free(options);
}

static void test_connect_errors(void) {
  blit_client *client = NULL;
  blit_options *options = new_options();

  /* Port 1 on loopback: nothing listens there in the test environment. */
  CHECK_RESULT(blit_client_connect("blit://127.0.0.1:1/", NULL, &client),
               BLIT_RESULT_NETWORK);
  CHECK_ERROR_MENTIONS("127.0.0.1:1");
  CHECK_RESULT(blit_client_connect("/local/path", NULL, &client),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("not a daemon address");
  CHECK_OK(blit_options_set_tls_ca(options, "/nonexistent/ca.pem"));
  CHECK_RESULT(blit_client_connect(daemon_url, options, &client),
               BLIT_RESULT_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS("TLS");
  CHECK(client == NULL);
  blit_options_free(options);
}

static void test_tls_ca(void) {
  blit_options *options = new_options();
  blit_client *client = NULL;
  blit_module_list *modules = NULL;
  blit_summary *summary = NULL;
  path_buf src = scratch_path("tls-src");
  make_tree(src.text, "tls");

  /* The test CA is not among the system's trust roots. */
  CHECK_RESULT(blit_client_connect(tls_url, options, &client),
               BLIT_RESULT_NETWORK);
  CHECK_ERROR_MENTIONS("cannot verify the TLS certificate");
  CHECK(client == NULL);

  CHECK_OK(blit_options_set_tls_ca(options, tls_ca));
  CHECK_OK(blit_client_connect(tls_url, options, &client));
  CHECK_OK(blit_client_list_modules(client, &modules));
  CHECK_OK(blit_client_push(client, src.text, "m/c-tls", NULL, &summary));
  CHECK_TREE(join(module_dir, "c-tls").text, "tls");
  blit_summary_free(summary);
  blit_module_list_free(modules);
  blit_client_free(client);
  blit_options_free(options);
}

static void test_cancel_push(void) {
  blit_client *client = connect_client();
  blit_options *options = new_options();
  blit_cancel *cancel = NULL;
  blit_summary *summary = NULL;
  path_buf src = scratch_path("copy-src");
  CHECK_OK(blit_cancel_new(&cancel));
  CHECK_OK(blit_options_set_cancel(options, cancel));
  CHECK_OK(blit_cancel_trigger(cancel));

  CHECK_RESULT(blit_client_push(client, src.text, "m/c-cancelled", options,
                                &summary),
               BLIT_RESULT_CANCELLED);

  CHECK(summary == NULL);
  CHECK(!exists(join(module_dir, "c-cancelled").text));
  blit_cancel_free(cancel);
  blit_options_free(options);
  blit_client_free(client);
}

/* Starts blitd with the victim config and waits until it serves; returns
   its PID, or -1 after a failed check. */
static pid_t start_victim(void) {
  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, STDOUT_FILENO);
    dup2(null_fd, STDERR_FILENO);
    execl(blitd_program, blitd_program, "--config", victim_config,
          (char *)NULL);
    _exit(127);
  }
  CHECK(pid > 0);
  for (int attempt = 0; pid > 0 && attempt < 600; attempt++) {
    blit_client *client = NULL;
    blit_status *status = NULL;
    if (blit_client_connect(victim_url, NULL, &client) == BLIT_RESULT_OK &&
        blit_client_status(client, &status) == BLIT_RESULT_OK) {
      blit_status_free(status);
      blit_client_free(client);
      return pid;
    }
    blit_client_free(client);
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  printf("  blitd %s did not serve %s within 60 s\n", victim_config,
         victim_url);
  atomic_fetch_add(&check_failures, 1);
  if (pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  return -1;
}

typedef struct {
  pid_t victim;
  int calls;
  int killed;
} kill_plan;

/* Kills the daemon on the third progress call, about 300 ms into the push,
   while file data streams to it. */
static int kill_daemon(const blit_progress *progress, void *user_data) {
  kill_plan *plan = user_data;
  (void)progress;
  if (++plan->calls == 3) {
    kill(plan->victim, SIGKILL);
    plan->killed = 1;
  }
  return 0;
}

static void test_daemon_lost(void) {
  /* Larger files until the push still runs at the third progress call. */
  static const size_t sizes_mib[] = {1024, 4096};
  path_buf src = scratch_path("lost-src");
  path_buf src_file = join(src.text, "big.bin");
  path_buf url = join(victim_url, "m/c-lost");
  blit_options *options = new_options();
  pid_t victim = start_victim();
  int lost = 0;
  make_dirs(src.text);

  for (size_t i = 0; victim > 0 && i < sizeof sizes_mib / sizeof sizes_mib[0];
       i++) {
    kill_plan plan = {victim, 0, 0};
    blit_summary *summary = NULL;
    write_big_file(src_file.text, sizes_mib[i]);
    CHECK_OK(blit_options_set_progress(options, kill_daemon, &plan));

    /* Without SIGPIPE blocked, the writes to the dead daemon's sockets
       would end this process here. */
    blit_result result = blit_push(src.text, url.text, options, &summary);

    if (plan.killed) {
      lost = 1;
      CHECK_RESULT(result, BLIT_RESULT_NETWORK);
      CHECK_ERROR_MENTIONS("blitd");
      CHECK(summary == NULL);
      int status = 0;
      CHECK(waitpid(victim, &status, 0) == victim);
      CHECK(WIFSIGNALED(status));
      CHECK(WTERMSIG(status) == SIGKILL);
      break;
    }
    /* The push ended before the third call. */
    CHECK_OK(result);
    blit_summary_free(summary);
  }
  if (victim > 0 && !lost) {
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
  }
  CHECK(lost);
  unlink(src_file.text);
  blit_options_free(options);
}

/* One push of the concurrency test, run on its own thread. */
typedef struct {
  blit_client *client;
  int index;
  blit_result result;
  uint64_t bytes;
  char tag[32];
  char error[512];
} push_job;

static void *run_push_job(void *arg) {
  push_job *job = arg;
  char src[PATH_MAX], dest[64];
  snprintf(src, sizeof src, "%s/threads-src-%d", scratch, job->index);
  snprintf(dest, sizeof dest, "m/c-threads/%d", job->index);
  make_tree(src, job->tag);
  blit_summary *summary = NULL;
  job->result = blit_client_push(job->client, src, dest, NULL, &summary);
  if (job->result == BLIT_RESULT_OK) {
    blit_summary_bytes(summary, &job->bytes);
    blit_summary_free(summary);
  } else {
    snprintf(job->error, sizeof job->error, "%s", last_error());
  }
  return NULL;
}

static void test_concurrent_pushes(void) {
  enum { THREADS = 4 };
  blit_client *client = connect_client();
  push_job jobs[THREADS];
  pthread_t threads[THREADS];

  for (int i = 0; i < THREADS; i++) {
    memset(&jobs[i], 0, sizeof jobs[i]);
    jobs[i].client = client;
    jobs[i].index = i;
    snprintf(jobs[i].tag, sizeof jobs[i].tag, "thread-%d", i);
    CHECK(pthread_create(&threads[i], NULL, run_push_job, &jobs[i]) == 0);
  }
  for (int i = 0; i < THREADS; i++) {
    CHECK(pthread_join(threads[i], NULL) == 0);
  }

  for (int i = 0; i < THREADS; i++) {
    char pushed[64];
    snprintf(pushed, sizeof pushed, "c-threads/%d", i);
    if (jobs[i].result != BLIT_RESULT_OK) {
      printf("  thread %d: %s: %s\n", i, blit_result_name(jobs[i].result),
             jobs[i].error);
    }
    CHECK(jobs[i].result == BLIT_RESULT_OK);
    CHECK(jobs[i].bytes == tree_bytes(jobs[i].tag));
    CHECK_TREE(join(module_dir, pushed).text, jobs[i].tag);
  }
  blit_client_free(client);
}

/* ---- Runner ------------------------------------------------------------ */

typedef struct {
  const char *name;
  void (*run)(void);
} test_case;

static const test_case tests[] = {
    {"version", test_version},
    {"result_numbers", test_result_numbers},
    {"free_null", test_free_null},
    {"null_arguments", test_null_arguments},
    {"invalid_utf8", test_invalid_utf8},
    {"invalid_options", test_invalid_options},
    {"last_error", test_last_error},
    {"copy_round_trip", test_copy_round_trip},
    {"mirror_deletes", test_mirror_deletes},
    {"copy_options", test_copy_options},
    {"dry_run_lists_changes", test_dry_run_lists_changes},
    {"copy_missing_source", test_copy_missing_source},
    {"copy_rejects_bad_addresses", test_copy_rejects_bad_addresses},
    {"copy_partial", test_copy_partial},
    {"progress_sees_final_total", test_progress_sees_final_total},
    {"cancel_from_callback", test_cancel_from_callback},
    {"cancel_token", test_cancel_token},
    {"status", test_status},
    {"list_modules", test_list_modules},
    {"push_pull_round_trip", test_push_pull_round_trip},
    {"push_pull_by_url", test_push_pull_by_url},
    {"list", test_list},
    {"purge", test_purge},
    {"remote_errors", test_remote_errors},
    {"wrong_token", test_wrong_token},
    {"connect_errors", test_connect_errors},
    {"tls_ca", test_tls_ca},
    {"cancel_push", test_cancel_push},
    {"concurrent_pushes", test_concurrent_pushes},
    {"daemon_lost", test_daemon_lost},
};

int main(int argc, char **argv) {
  require_env("BLIT_TOKEN");
  daemon_url = require_env("BLIT_TEST_URL");
  module_dir = require_env("BLIT_TEST_MODULE_DIR");
  read_only_dir = require_env("BLIT_TEST_RO_DIR");
  scratch = require_env("BLIT_TEST_TMP");
  tls_url = require_env("BLIT_TEST_TLS_URL");
  tls_ca = require_env("BLIT_TEST_TLS_CA");
  blitd_program = require_env("BLIT_TEST_BLITD");
  victim_config = require_env("BLIT_TEST_VICTIM_CONFIG");
  victim_url = require_env("BLIT_TEST_VICTIM_URL");

  /* Optional arguments pick tests by name. */
  int passed = 0, failed = 0;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    int selected = argc < 2;
    for (int a = 1; a < argc; a++) {
      selected |= strcmp(argv[a], tests[i].name) == 0;
    }
    if (!selected) {
      continue;
    }
    int before = atomic_load(&check_failures);
    tests[i].run();
    if (atomic_load(&check_failures) == before) {
      passed++;
      printf("ok   %s\n", tests[i].name);
    } else {
      failed++;
      printf("FAIL %s\n", tests[i].name);
    }
    fflush(stdout);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
