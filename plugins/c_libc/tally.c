// A plugin in C with libc on WASI preview 1 (Debian's wasi-libc): stdio, malloc, time and rand,
// unmodified. It tallies the words of its inputs in a linked list on the malloc heap, which lives
// in its linear memory and so persists between calls; a call that fails leaves it as it was.
//
// Install it with the config `wasi.stdout = output`: what it prints is then the call's output
// (without it, stdout becomes log lines). Input is stdin. Each function returns 0 for success or
// an error code (the plugin's error); `quit` calls exit(3).
//
// Build (cargo xtask build-plugins does it):
//   clang --target=wasm32-wasi -O2 -mexec-model=reactor -o c_tally.wasm tally.c
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXPORT(name) __attribute__((export_name(name)))

struct word {
    char *text;
    unsigned count;
    struct word *next;
};

// Durable state: the list and its strings are on the malloc heap, in linear memory.
static struct word *words;
static unsigned distinct;
static unsigned long long total;
static long long installed_at;

// Runs once, from `_initialize`, when the plugin is installed.
__attribute__((constructor)) static void init(void) {
    installed_at = (long long)time(NULL);
    srand((unsigned)installed_at);
}

// The whole input (stdin), NUL-terminated, in a buffer the caller frees.
static char *read_input(void) {
    size_t size = 64, len = 0;
    char *buf = malloc(size);
    for (;;) {
        if (len + 1 == size) {
            size *= 2;
            buf = realloc(buf, size);
        }
        ssize_t n = read(0, buf + len, size - len - 1);
        if (n <= 0) break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

static struct word *find(const char *text) {
    for (struct word *w = words; w; w = w->next)
        if (strcmp(w->text, text) == 0) return w;
    return NULL;
}

// Adds the words (letters and digits, lowercased) of `input`; returns how many.
static int tally(char *input) {
    int added = 0;
    char *p = input;
    while (*p) {
        while (*p && !isalnum((unsigned char)*p)) p++;
        char *start = p;
        while (*p && isalnum((unsigned char)*p)) {
            *p = (char)tolower((unsigned char)*p);
            p++;
        }
        if (p == start) break;
        char saved = *p;
        *p = '\0';
        struct word *w = find(start);
        if (!w) {
            w = malloc(sizeof *w);
            w->text = strdup(start);
            w->count = 0;
            w->next = words;
            words = w;
            distinct++;
        }
        w->count++;
        total++;
        added++;
        *p = saved;
    }
    return added;
}

// Input: text. Output: {"added":N,"distinct":D,"total":T}. Error 1 if it has no words.
EXPORT("add") int add(void) {
    char *input = read_input();
    int added = tally(input);
    free(input);
    if (added == 0) {
        fprintf(stderr, "no words in the input\n");
        return 1;
    }
    printf("{\"added\":%d,\"distinct\":%u,\"total\":%llu}\n", added, distinct, total);
    return 0;
}

// As `add`, then fails with code 2: nothing it added is kept.
EXPORT("add_then_fail") int add_then_fail(void) {
    add();
    fprintf(stderr, "failing on purpose after adding\n");
    return 2;
}

// Input: a word. Output: {"word":"w","count":N}.
EXPORT("count") int count(void) {
    char *input = read_input();
    for (char *p = input; *p; p++) *p = (char)tolower((unsigned char)*p);
    struct word *w = find(input);
    printf("{\"word\":\"%s\",\"count\":%u}\n", input, w ? w->count : 0);
    free(input);
    return 0;
}

// Output: a die roll from rand() (seeded at install from time()), the message time and the
// install time.
EXPORT("roll") int roll(void) {
    int die = rand() % 6 + 1;
    printf("{\"roll\":%d,\"now\":%lld,\"installed_at\":%lld}\n", die, (long long)time(NULL),
           installed_at);
    return 0;
}

// Exits through libc's exit(3): its atexit work runs, then WASI's proc_exit(3) fails the call.
EXPORT("quit") int quit(void) {
    printf("bye\n");
    exit(3);
}
