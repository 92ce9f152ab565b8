/*
 * spandsp_bench: CPU cost of Debian libspandsp's dtmf_rx on a raw audio file.
 *
 * Usage: spandsp_bench FILE.raw PASSES
 *   FILE.raw  mono signed 16-bit native-endian samples at 8 kHz
 *   PASSES    how many times to run the file, each pass a fresh receiver
 *             (one pass = one call), fed in 20 ms (160-sample) frames.
 *
 * Prints one line: "<audio seconds> <cpu seconds> <digits in first pass>".
 * CPU time is CLOCK_PROCESS_CPUTIME_ID around the dtmf_rx calls only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <spandsp.h>

#define RATE 8000
#define FRAME 160

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static int16_t *load(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    int16_t *buf = malloc((size_t) bytes);
    if (buf == NULL || fread(buf, 1, (size_t) bytes, f) != (size_t) bytes) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    *n = bytes / (long) sizeof(int16_t);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE.raw PASSES\n", argv[0]);
        return 2;
    }
    long n = 0;
    int16_t *audio = load(argv[1], &n);
    if (audio == NULL || n < FRAME) {
        fprintf(stderr, "%s: cannot read audio\n", argv[1]);
        return 2;
    }
    int passes = atoi(argv[2]);
    long usable = n - n % FRAME;
    char digits[MAX_DTMF_DIGITS + 1];
    size_t first_pass_digits = 0;
    double cpu = 0.0;
    for (int p = 0; p < passes; p++) {
        dtmf_rx_state_t *rx = dtmf_rx_init(NULL, NULL, NULL);
        size_t found = 0;
        double t0 = cpu_now();
        for (long i = 0; i < usable; i += FRAME) {
            dtmf_rx(rx, audio + i, FRAME);
            found += dtmf_rx_get(rx, digits, MAX_DTMF_DIGITS);
        }
        cpu += cpu_now() - t0;
        if (p == 0)
            first_pass_digits = found;
        dtmf_rx_free(rx);
    }
    printf("%.6f %.6f %zu\n", (double) usable / RATE * passes, cpu, first_pass_digits);
    free(audio);
    return 0;
}
