#!/bin/sh
# Write the block design of the demo (datasets/attention_design/events.tsv):
# 360 scans at TR 3.22 s in 36 blocks of 10 scans cycling through
# fixation, static dots (Photic), moving dots (Photic + Motion) and
# attended moving dots (Photic + Motion + Attention), as in the attention
# to visual motion study. Consecutive blocks of one input are merged into
# one event, so inputs never double up where blocks abut.
TR=3.22
BLOCK=10
awk -v tr="$TR" -v blk="$BLOCK" 'BEGIN {
    d = tr * blk
    print "onset\tduration\ttrial_type"
    for (c = 0; c < 9; c++) {
        t0 = (4 * c) * d               # fixation block first, then three visual blocks
        printf "%.2f\t%.2f\tPhotic\n",    t0 + d,     3 * d
        printf "%.2f\t%.2f\tMotion\n",    t0 + 2 * d, 2 * d
        printf "%.2f\t%.2f\tAttention\n", t0 + 3 * d, d
    }
}'
