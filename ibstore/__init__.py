"""The results root: the one contract between the trainer and the explorer.

`layout` says where things live, `schema` what the Parquet tables hold. Neither
imports TensorFlow or Streamlit, so both sides (and notebooks) can use them.
"""
