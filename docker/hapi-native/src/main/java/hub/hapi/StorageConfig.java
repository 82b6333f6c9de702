package hub.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings.ClientIdStrategyEnum;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings.IdStrategyEnum;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.entity.StorageSettings.IndexEnabledEnum;
import jakarta.persistence.EntityManagerFactory;
import java.util.HashSet;
import javax.sql.DataSource;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.autoconfigure.orm.jpa.JpaProperties;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/** HAPI's storage: its settings from `hapi.fhir.*`, and JPA on the configured database. */
@Configuration
@EnableConfigurationProperties({HapiFhirProperties.class, JpaProperties.class})
public class StorageConfig {

	@Bean
	public JpaStorageSettings jpaStorageSettings(HapiFhirProperties fhir) {
		fhir.checkSupported();
		JpaStorageSettings settings = new JpaStorageSettings();
		settings.setResourceClientIdStrategy(fhir.getClientIdStrategy());
		settings.setResourceServerIdStrategy(serverIdStrategy(fhir));
		settings.setReuseCachedSearchResultsForMillis(reuseMillis(fhir.getReuseCachedSearchResultsMillis()));
		settings.setExpireSearchResultsAfterMillis(fhir.getRetainCachedSearchesMins() * 60_000L);
		settings.setAllowExternalReferences(fhir.isAllowExternalReferences());
		settings.setTreatBaseUrlsAsLocal(new HashSet<>(fhir.getLocalBaseUrls()));
		settings.setAllowContainsSearches(fhir.isAllowContainsSearches());
		settings.setAllowMultipleDelete(fhir.isAllowMultipleDelete());
		settings.setAutoCreatePlaceholderReferenceTargets(fhir.isAutoCreatePlaceholderReferenceTargets());
		settings.setEnforceReferentialIntegrityOnWrite(fhir.isEnforceReferentialIntegrityOnWrite());
		settings.setEnforceReferentialIntegrityOnDelete(fhir.isEnforceReferentialIntegrityOnDelete());
		settings.setIndexMissingFields(
				fhir.isEnableIndexMissingFields() ? IndexEnabledEnum.ENABLED : IndexEnabledEnum.DISABLED);
		settings.setExpungeEnabled(fhir.isExpungeEnabled());
		settings.setDeleteExpungeEnabled(fhir.isDeleteExpungeEnabled());
		settings.setFetchSizeDefaultMaximum(fhir.getMaxPageSize());
		if (!fhir.getSearchPrefetchThresholds().isEmpty()) {
			settings.setSearchPreFetchThresholds(fhir.getSearchPrefetchThresholds());
		}
		return settings;
	}

	/** As the image does: with client ids of any form, server ids are UUIDs unless set, so
	 * that a number the server picks can never be an id a client already chose. */
	private static IdStrategyEnum serverIdStrategy(HapiFhirProperties fhir) {
		if (fhir.getServerIdStrategy() != null) {
			return fhir.getServerIdStrategy();
		}
		return fhir.getClientIdStrategy() == ClientIdStrategyEnum.ANY
				? IdStrategyEnum.UUID
				: IdStrategyEnum.SEQUENTIAL_NUMERIC;
	}

	/** As the image does: 0 means never reuse, which HAPI spells null. */
	private static Long reuseMillis(Long millis) {
		return millis == null || millis == 0 ? null : millis;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	/** No channel types: HAPI activates and delivers no Subscription (the hub delivers them). */
	@Bean
	public SubscriptionSettings subscriptionSettings() {
		return new SubscriptionSettings();
	}

	@Bean
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings,
			DataSource dataSource,
			JpaProperties jpaProperties) {
		LocalContainerEntityManagerFactoryBean factory =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		factory.setPersistenceUnitName("HAPI_PU");
		factory.setDataSource(dataSource);
		// spring.jpa.properties.*: the dialect, schema update, no full-text index.
		factory.getJpaPropertyMap().putAll(jpaProperties.getProperties());
		return factory;
	}

	@Bean
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		return new JpaTransactionManager(entityManagerFactory);
	}
}
