package hub.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.server.ETagSupportEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.RequestValidatingInterceptor;
import ca.uhn.fhir.rest.server.interceptor.ResponseValidatingInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** The FHIR REST API at /fhir: HAPI's JPA resource providers, transactions, paging. */
@Configuration
public class ServerConfig {

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(
			FhirContext fhirContext,
			HapiFhirProperties fhir,
			@Qualifier("myResourceProvidersR4") ResourceProviderFactory resourceProviders,
			JpaSystemProvider<?, ?> systemProvider,
			IFhirSystemDao<?, ?> systemDao,
			DatabaseBackedPagingProvider pagingProvider,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport) {
		RestfulServer server = new RestfulServer(fhirContext);
		server.setServerName("HAPI FHIR (hub native launcher)");
		server.registerProviders(resourceProviders.createProviders());
		server.registerProvider(systemProvider);

		pagingProvider.setDefaultPageSize(fhir.getDefaultPageSize());
		pagingProvider.setMaximumPageSize(fhir.getMaxPageSize());
		server.setPagingProvider(pagingProvider);

		server.setServerConformanceProvider(new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport));
		server.setDefaultResponseEncoding(fhir.getDefaultEncoding());
		server.setDefaultPrettyPrint(fhir.isDefaultPrettyPrint());
		server.setETagSupport(fhir.isEtagSupportEnabled() ? ETagSupportEnum.ENABLED : ETagSupportEnum.DISABLED);
		registerValidation(server, fhir.getValidation(), validationSupport);

		ServletRegistrationBean<RestfulServer> registration = new ServletRegistrationBean<>(server, "/fhir/*");
		registration.setLoadOnStartup(1);
		return registration;
	}

	private static void registerValidation(
			RestfulServer server, HapiFhirProperties.Validation validation, IValidationSupport support) {
		if (validation.isRequestsEnabled()) {
			RequestValidatingInterceptor requests = new RequestValidatingInterceptor();
			requests.addValidatorModule(new FhirInstanceValidator(support));
			server.registerInterceptor(requests);
		}
		if (validation.isResponsesEnabled()) {
			ResponseValidatingInterceptor responses = new ResponseValidatingInterceptor();
			responses.addValidatorModule(new FhirInstanceValidator(support));
			server.registerInterceptor(responses);
		}
	}
}
