/*
 * test_fuzz_regressions.c - replays every input in tests/fuzz/regressions/
 * (crashes `make fuzz` found) and tests/fuzz/corpus/ through the fuzz
 * target's own function, in the normal build; under SAN=1 with ASan+UBSan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "../fuzz/fuzz_options.c"

static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        uint8_t buf[65536];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n); /* aborts (or trips a sanitizer) on a regression */
        ++count;
    }
    closedir(d);
    return count;
}

static void test_regressions(void **state)
{
    (void)state;
    assert_true(replay_dir("tests/fuzz/regressions") >= 1);
}

static void test_corpus(void **state)
{
    (void)state;
    assert_true(replay_dir("tests/fuzz/corpus") >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regressions),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests_name("fuzz regressions", tests, NULL, NULL);
}
