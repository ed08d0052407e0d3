/*
 * push_dir: push a local directory to a blit daemon and print the summary.
 *
 *   push_dir DIR blit://HOST[:PORT]/MODULE[/PATH]
 *
 * The token comes from the BLIT_TOKEN environment variable. Exits 0 when
 * every entry was pushed, 2 when some failed (each is printed on stderr),
 * and 1 when the push could not run, like the blit command-line tool.
 *
 * Build: cc push_dir.c $(pkg-config --cflags --libs blit) -o push_dir
 */
#include <inttypes.h>
#include <stdio.h>

#include <blit.h>

/* Prints the status and the message of the call that just failed. */
static void print_error(const char *what, blit_result result) {
  char message[1024];
  blit_last_error(message, sizeof message, NULL);
  fprintf(stderr, "push_dir: %s: %s: %s\n", what, blit_result_name(result),
          message);
}

/* Prints each failed entry of a summary on stderr. */
static void print_failures(const blit_summary *summary) {
  size_t count = 0;
  blit_summary_failure_count(summary, &count);
  for (size_t i = 0; i < count; i++) {
    const blit_failure *failure = NULL;
    if (blit_summary_failure(summary, i, &failure) == BLIT_RESULT_OK) {
      /* The path is bytes in no particular encoding; print it as is. */
      fprintf(stderr, "push_dir: failed: %.*s: %s\n", (int)failure->path_len,
              (const char *)failure->path, failure->message);
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s DIR blit://HOST[:PORT]/MODULE[/PATH]\n",
            argv[0]);
    return 1;
  }

  blit_summary *summary = NULL;
  /* NULL options: copy without deleting, token from BLIT_TOKEN. */
  blit_result result = blit_push(argv[1], argv[2], NULL, &summary);
  if (result != BLIT_RESULT_OK && result != BLIT_RESULT_PARTIAL) {
    print_error("push", result);
    return 1;
  }

  uint64_t transferred = 0, skipped = 0, failed = 0, bytes = 0;
  double seconds = 0;
  blit_summary_transferred(summary, &transferred);
  blit_summary_skipped(summary, &skipped);
  blit_summary_failed(summary, &failed);
  blit_summary_bytes(summary, &bytes);
  blit_summary_seconds(summary, &seconds);
  printf("transferred %" PRIu64 ", skipped %" PRIu64 ", failed %" PRIu64
         ", %" PRIu64 " bytes in %.2f s\n",
         transferred, skipped, failed, bytes, seconds);
  print_failures(summary);
  blit_summary_free(summary);
  return result == BLIT_RESULT_OK ? 0 : 2;
}
