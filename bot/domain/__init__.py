"""What a candidate is, how it is judged and approved, and which states a promotion goes through.

Plain data and functions over the standard library only: no Slack, database, MLflow, KFP or HTTP.
"""
