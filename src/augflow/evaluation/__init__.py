"""Comparing training sets: the baseline arms (SMOTE, classic shifts), the classifiers every arm is
scored with, and the paired bootstrap behind every confidence interval."""
