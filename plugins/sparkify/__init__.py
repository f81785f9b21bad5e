"""Sparkify warehouse operators: stage JSON, load the star schema, check it."""

from sparkify.operators.data_quality import DataQualityOperator
from sparkify.operators.load_dimension import LoadDimensionOperator
from sparkify.operators.load_fact import LoadFactOperator
from sparkify.operators.stage_to_redshift import StageToRedshiftOperator

__all__ = ["DataQualityOperator", "LoadDimensionOperator", "LoadFactOperator", "StageToRedshiftOperator"]
